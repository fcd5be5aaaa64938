import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { ExistsError, IllegalStateError, LibipcError, isAlive } from '@libipc/shm';
import { type HistoryEvent, Manager, type ServiceSpec } from '@libipc/supervisor';
import type { RunConfig } from '../config/load-config.js';
import { type RunRecord, listRuns, removeRunRecord, writeRunRecord } from '../runs.js';
import type { RunView } from './view.js';
import { type StoreFile, isJsonStore, jsonHistoryPath, openStoreFile } from '../store-file.js';

export interface SessionOptions {
  config: RunConfig;
  storePath: string;
  /** The store (and the default log folder) belong to this run alone and are removed when it ends. */
  ephemeral: boolean;
  defaultLogs: string;
  runtimeDir: string;
  record: RunRecord;
}

/** Stable JSON of a spec, to tell whether the config changed a stored one. */
function specKey(spec: ServiceSpec): string {
  return JSON.stringify(spec, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

/**
 * One `libipc run`: a Manager on a store file (SQLite, or JSON where there is no SQLite) (so a run started after a crash adopts what still runs),
 * the config applied to it, its events and output shown, and a shutdown in reverse dependency order.
 */
export class RunSession {
  readonly manager: Manager;
  private readonly store: StoreFile;
  private view: RunView | undefined;
  private stopping = false;
  private unclean: string[] = [];
  private readonly followed = new Set<string>();

  private constructor(
    private readonly opts: SessionOptions,
    store: StoreFile,
    manager: Manager,
    /** The specs the store held before this run (to tell which ones the config changed). */
    private readonly previous: Map<string, ServiceSpec>,
  ) {
    this.store = store;
    this.manager = manager;
  }

  /** Opens the store and takes it over (ERR_LIBIPC_EXISTS while another live run holds it). */
  static open(opts: SessionOptions): RunSession {
    mkdirSync(dirname(opts.storePath), { recursive: true });
    const store = openStoreFile(opts.storePath);
    let manager: Manager;
    const previous = new Map<string, ServiceSpec>();
    try {
      const snap = store.store.load();
      for (const { spec } of snap.services) previous.set(spec.name, spec as ServiceSpec);
      // A changed service none of whose processes still runs takes its new spec before the manager restores the
      // store: restored with the old one, it would be spawned, stopped and spawned again. One that still runs
      // (adopted) is restarted once with the new spec by apply().
      for (const spec of opts.config.specs) {
        const old = previous.get(spec.name);
        if (old === undefined || specKey(old) === specKey(spec)) continue;
        const live = snap.instances.some((i) => i.service === spec.name && i.pid !== undefined && i.startTime !== undefined && isAlive(i.pid, BigInt(i.startTime)));
        if (live) continue;
        store.store.putService({ spec });
        previous.set(spec.name, spec);
      }
      manager = new Manager({ store: store.store, sinks: [store.history], env: opts.config.env });
    } catch (err) {
      store.close();
      if (err instanceof ExistsError && /held by a running manager \(pid (\d+)\)/.test(err.message)) {
        const pid = /pid (\d+)/.exec(err.message)![1];
        throw new ExistsError(`store ${opts.storePath} is in use by another libipc run (pid ${pid}); stop that one (Ctrl-C in its terminal) or use another --store`);
      }
      throw err;
    }
    // A run that died holding this store is over: this one took its services (and its place).
    for (const old of listRuns({ LIBIPC_RUNTIME_DIR: opts.runtimeDir })) if (!old.alive && old.store === opts.storePath) removeRunRecord(opts.runtimeDir, old.pid);
    writeRunRecord(opts.runtimeDir, opts.record);
    return new RunSession(opts, store, manager, previous);
  }

  names(): string[] {
    return this.manager.statusAll().map((s) => s.name);
  }

  /**
   * Shows events and output in `view`, then makes the store match the config and starts everything.
   * Resolves with the starts that failed (unit or service name → why).
   */
  async start(view: RunView, footer: () => string): Promise<Map<string, string>> {
    this.view = view;
    const m = this.manager;
    const redraw = () => view.update(() => m.statusAll(), footer());
    m.on('state', redraw);
    m.on('history', (e: HistoryEvent) => this.onHistory(e));
    m.on('warning', (err: Error) => {
      if (this.stopping) this.unclean.push(err.message);
      view.event('libipc', `warning: ${err.message}`, 'warn');
    });
    redraw();
    await m.loaded;
    const failures = await this.apply(this.opts.config.specs);
    for (const s of m.statusAll()) this.follow(s.name);
    redraw();
    return failures;
  }

  /** The config wins over the store: changed services are redefined, removed ones removed, all started. */
  private async apply(specs: ServiceSpec[]): Promise<Map<string, string>> {
    const m = this.manager;
    const previous = this.previous;
    const known = new Set(m.statusAll().map((s) => s.service));
    const wanted = new Set(specs.map((s) => s.name));
    const changed = new Set(specs.filter((s) => known.has(s.name) && previous.has(s.name) && specKey(previous.get(s.name)!) !== specKey(s)).map((s) => s.name));
    // Stopped first (dependents with them), redefined below.
    for (const s of [...specs].reverse()) if (changed.has(s.name)) await m.stop(s.name).catch(() => undefined);
    const starts: Array<Promise<void>> = [];
    const failures = new Map<string, string>();
    for (const s of specs) {
      // Dependencies first (the config's order): start(spec) defines each before its dependents need it.
      const p = known.has(s.name) && !changed.has(s.name) ? m.start(s.name) : m.start(s);
      // A failure shows in the table and in the summary.
      starts.push(p.catch((err: unknown) => void failures.set(s.name, err instanceof Error ? err.message : String(err))));
      // Defined now, spawned later: following its output from here on misses no line.
      for (const st of m.statusAll(s.name)) this.follow(st.name);
    }
    const gone = [...known].filter((n) => !wanted.has(n));
    // Dependents first: a service is removed once nothing left depends on it.
    while (gone.length > 0) {
      const name = gone.find((n) => !gone.some((o) => o !== n && (previous.get(o)?.dependsOn ?? []).includes(n)));
      if (name === undefined) break;
      gone.splice(gone.indexOf(name), 1);
      await m.remove(name).catch((err: unknown) => this.view?.event(name, `could not be removed: ${(err as Error).message}`, 'warn'));
    }
    await Promise.all(starts);
    return failures;
  }

  /** Prints a unit's output lines (only for services that log to files). */
  private follow(name: string): void {
    if (this.followed.has(name)) return;
    let reader;
    try {
      reader = this.manager.logs(name, { follow: true, lines: 0 });
    } catch (err) {
      if (err instanceof IllegalStateError) return; // logs: 'inherit' or 'ignore'
      throw err;
    }
    this.followed.add(name);
    void (async () => {
      for await (const line of reader) this.view?.log(name, line);
    })().catch(() => undefined);
  }

  private onHistory(e: HistoryEvent): void {
    const v = this.view;
    if (!v) return;
    switch (e.type) {
      case 'start':
        v.event(e.name, `started (pid ${e.pid})`);
        break;
      case 'ready':
        v.event(e.name, `running${e.pid ? ` (pid ${e.pid})` : ''}`, 'good');
        break;
      case 'exit': {
        const how = e.signal ? `killed by ${e.signal}` : `exited with code ${e.exitCode ?? 'unknown'}`;
        // A process that needed SIGKILL after its grace did not stop cleanly.
        if (this.stopping && e.signal === 'SIGKILL') this.unclean.push(`${e.name} had to be killed`);
        v.event(e.name, how, this.stopping && !e.signal && e.exitCode === 0 ? 'plain' : this.stopping && e.signal === 'SIGTERM' ? 'plain' : 'bad');
        break;
      }
      case 'restart':
        v.event(e.name, restartLine(e), 'warn');
        break;
      case 'failed':
        v.event(e.name, `failed: ${e.reason ?? 'no reason recorded'}`, 'bad');
        break;
      case 'adopt':
        v.event(e.name, `adopted pid ${e.pid} (left running by an earlier libipc run)`, 'good');
        break;
      case 'stop':
        v.event(e.name, 'stopped');
        break;
    }
  }

  /**
   * Stops everything, dependents first, each with its grace (SIGTERM, then SIGKILL). Resolves with the
   * reasons it was not clean (none: everything stopped when asked).
   */
  async stop(force: AbortSignal): Promise<string[]> {
    this.stopping = true;
    const failed = this.manager.statusAll().filter((s) => s.state === 'failed');
    for (const f of failed) this.unclean.push(`${f.name} had failed: ${f.reason ?? 'no reason recorded'}`);
    const onForce = () => {
      this.unclean.push('a second interrupt killed what was still running');
      for (const s of this.manager.statusAll()) {
        // Each service leads its own process group (killTree): its children go too.
        if (s.pid !== undefined) {
          try {
            process.kill(-s.pid, 'SIGKILL');
          } catch {
            try {
              process.kill(s.pid, 'SIGKILL');
            } catch {
              // already gone
            }
          }
        }
      }
    };
    if (force.aborted) onForce();
    else force.addEventListener('abort', onForce, { once: true });
    try {
      await this.manager.shutdown();
    } catch (err) {
      this.unclean.push(err instanceof LibipcError ? err.message : String(err));
    } finally {
      force.removeEventListener('abort', onForce);
    }
    const left = this.manager.statusAll().filter((s) => s.state !== 'stopped' && s.state !== 'exited' && s.state !== 'failed');
    for (const s of left) this.unclean.push(`${s.name} is still ${s.state}`);
    return this.unclean;
  }

  /** Releases the store; a private one (and its log folder) is removed, and the run's record with it. */
  close(): void {
    try {
      this.store.close();
    } finally {
      removeRunRecord(this.opts.runtimeDir, this.opts.record.pid);
      if (this.opts.ephemeral) {
        for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${this.opts.storePath}${suffix}`, { force: true });
        if (isJsonStore(this.opts.storePath)) rmSync(jsonHistoryPath(this.opts.storePath), { force: true });
        rmSync(this.opts.defaultLogs, { recursive: true, force: true });
      }
    }
  }
}

/** "restarting in 200 ms (restart #3: exited with code 1)": the delay said once, not again from the reason. */
export function restartLine(e: Pick<HistoryEvent, 'backoffMs' | 'restarts' | 'reason' | 'trigger'>): string {
  let reason = e.reason?.replace(/;? ?restarting in \d+ ms$/, '').trim();
  // A trigger's restart says which ("memory: …"); a crash or a manual restart speaks for itself.
  if (reason && e.trigger && e.trigger !== 'crash' && e.trigger !== 'manual' && !reason.startsWith(`${e.trigger}: `)) reason = `${e.trigger}: ${reason}`;
  return `restarting${e.backoffMs ? ` in ${e.backoffMs} ms` : ''} (restart #${(e.restarts ?? 0) + (e.backoffMs ? 1 : 0)}${reason ? `: ${reason}` : ''})`;
}
