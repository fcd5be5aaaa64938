import { EventEmitter } from 'node:events';
import { resolve as resolvePath } from 'node:path';
import {
  ClosedError,
  IllegalStateError,
  InvalidArgumentError,
  MAX_TIMER_MS,
  NotFoundError,
  describeValue,
  option,
  parseOptions,
  validateTimeout,
} from '@libipc/shm';
import { z } from 'zod';
import { Announcer, asSink } from './announcer.js';
import { Control } from './control.js';
import type { HistoryEvent, HistorySink } from './history.js';
import type { LogReader } from './logs.js';
import { ListenSockets } from './listen-sockets.js';
import { Persistence, isStore } from './persistence.js';
import { Reconciler } from './reconciler.js';
import { Registry } from './registry.js';
import { type ReloadOptions, type ReloadReport, Reloader } from './reload.js';
import { MAX_INSTANCES, type ServiceSpec, validateSpec } from './spec.js';
import { hasProcess } from './states.js';
import type { Store } from './store.js';
import { type Parts, reconcileOnce, restore } from './store-sync.js';
import { Triggers } from './triggers.js';
import type { ServiceStatus, Unit } from './unit.js';
import { closeLogs, readLogs } from './unit-logs.js';

export interface ManagerOptions {
  /** Where specs, dependencies, desired states and process identities are kept: a Store, or the path of a JSON store file. */
  store?: Store | string;
  /** Receivers of every lifecycle event: sinks, or plain functions. */
  sinks?: Array<HistorySink | ((event: HistoryEvent) => void | Promise<void>)>;
  /** Global environment of every service (each spec's env overrides it). */
  env?: Record<string, string>;
  /** Start the reconciler with this interval. */
  reconcileMs?: number;
  /** Events each sink may have waiting before new ones are dropped (default 1000). */
  historyQueueSize?: number;
  /** How long one sink write may take before it is abandoned (default 5000). */
  sinkTimeoutMs?: number;
}

export interface LogsOptions {
  /** How many of the last lines (default 100). */
  lines?: number;
  /** Keep yielding new lines as they are written (with `for await`). */
  follow?: boolean;
  /** Which stream (default both, merged in time order). */
  stream?: 'stdout' | 'stderr' | 'both';
}

export const DEFAULT_RECONCILE_MS = 1000;
const DEFAULT_HISTORY_QUEUE = 1000;
const DEFAULT_SINK_TIMEOUT_MS = 5000;
const SHUTDOWN_SINK_DRAIN_MS = 2000;

const envSchema = z.record(z.string().regex(/^[^=\0]+$/), z.string()).describe('an object of strings');

/**
 * A manager of named processes: specs with dependencies (a DAG), restart policies and contracts,
 * persistence, history sinks, log files and a reconciler.
 *
 * Everything it does follows from one rule, applied after every event: each service has a desired state
 * (start → running, stop → stopped); a service may run only while everything it depends on runs and is
 * ready, and may be stopped only once nothing that depends on it runs. So starting starts dependencies
 * first, stopping stops dependents first, and after a crash the service restarts (its policy) and then its
 * dependents, in topological order. Concurrent calls just change desired states: a storm settles to what
 * the last call for each service asked for.
 *
 * Events: 'state' ({ name, from, to, reason }); the lifecycle events 'start', 'ready', 'exit', 'restart',
 * 'failed', 'stop', 'adopt' (each a HistoryEvent, also sent to every sink, and all of them as 'history');
 * 'sink-error' ({ sink, error }); 'history-dropped' ({ sink, dropped, totalDropped }); 'reconcile'
 * ({ changes }); 'warning' (an Error: something went wrong that the manager worked around); 'watching'
 * ({ service, paths }: a `watch` spec's watcher is ready). A 'restart' event carries its `trigger` ('crash',
 * 'manual', 'memory', 'cron', 'watch', 'reload') and status() its `lastRestart`.
 */
export class Manager extends EventEmitter {
  /** Resolves once what the store says should run runs (or failed to start); at once without a store. */
  readonly loaded: Promise<void>;
  private globalEnv: Record<string, string>;
  private readonly out: Announcer;
  private readonly books: Persistence;
  private readonly reg: Registry;
  private readonly control: Control;
  private readonly parts: Parts;
  private readonly reconciler: Reconciler;
  private readonly triggers: Triggers;
  private readonly sockets = new ListenSockets();
  private readonly reloader: Reloader;
  private shutdownPromise: Promise<void> | undefined;

  constructor(opts?: ManagerOptions) {
    super();
    const o = parseOptions(
      opts,
      {
        store: option.custom<Store | string>(
          (v) => (typeof v === 'string' && v.length > 0 && !v.includes('\0')) || isStore(v),
          'a Store (JsonFileStore, SqliteStore, …) or the path of a JSON store file',
        ),
        sinks: option.custom<unknown[]>(
          (v) => Array.isArray(v) && v.length <= 64 && v.every((s) => asSink(s) !== undefined),
          'an array of history sinks (objects with write(event), or functions)',
        ),
        env: envSchema,
        reconcileMs: option.ms(10, MAX_TIMER_MS),
        historyQueueSize: option.int(1, 1_000_000),
        sinkTimeoutMs: option.ms(1, MAX_TIMER_MS),
      },
      'Manager options',
    );
    this.globalEnv = { ...(o.env ?? {}) };
    const sinks = (o.sinks ?? []).map((s) => asSink(s)!);
    this.out = new Announcer(this, sinks, o.historyQueueSize ?? DEFAULT_HISTORY_QUEUE, o.sinkTimeoutMs ?? DEFAULT_SINK_TIMEOUT_MS);
    this.reconciler = new Reconciler(() => this.reconcileOnce());
    this.books = new Persistence(o.store, (err) => this.out.warn(err));
    this.reg = new Registry(this.books, { onChange: (u, c) => this.control.onStateChange(u, c), retire: (u) => this.control.retire(u) });
    this.control = new Control(this.reg, this.books, this.out, () => this.globalEnv, this.sockets);
    this.reloader = new Reloader(this.reg, this.control, this.books, this.out);
    this.control.afterChange = (u, c) => this.reloader.onStateChange(u, c);
    this.parts = { reg: this.reg, control: this.control, books: this.books, out: this.out };
    this.triggers = new Triggers(this.reg, this.control, this.out, ownFiles(o.store, sinks));
    this.control.afterPass = () => this.triggers.sync();
    let toStart: Unit[] = [];
    if (this.books.store) {
      try {
        toStart = restore(this.parts, this.books.store);
      } catch (err) {
        this.books.abandon();
        throw err;
      }
      this.books.hold();
    }
    this.loaded = Promise.allSettled(toStart.map((u) => this.control.waitFor(u, 'running'))).then(() => undefined);
    if (o.reconcileMs !== undefined) this.startReconciler(o.reconcileMs);
    // A microtask, not nextTick: inside async code nextTick would run after the caller's next await.
    queueMicrotask(() => {
      this.out.replay();
      this.control.schedule();
    });
  }

  // ---- public API ----

  /**
   * Starts a service (a spec, or the name of one this manager knows): what it depends on first, each waited
   * for until ready. Resolves when it runs (ready); rejects when a start attempt fails (the policy may go on
   * retrying: see status()), when it or a dependency fails, or when a later stop() overtakes it.
   */
  start(spec: ServiceSpec | string): Promise<void> {
    try {
      this.assertOpen();
      if (typeof spec === 'string') return this.control.requestStart(this.reg.unitsNamed(spec));
      const s = validateSpec(spec);
      this.reg.define(s);
      return this.control.requestStart(this.reg.unitsOf.get(s.name)!);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Starts `instances` copies: name.0 … name.N-1 (each gets LIBIPC_INSTANCE_ID and its id as the last argument). */
  startN(spec: ServiceSpec & { instances: number }): Promise<void> {
    const n = (spec as { instances?: unknown } | null | undefined)?.instances;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
      return Promise.reject(new InvalidArgumentError(`startN: instances must be a whole number >= 1, got ${describeValue(n)}`));
    }
    return this.start(spec);
  }

  /** Stops a service (or all instances of a spec), dependents first. `timeoutMs`: grace between SIGTERM and SIGKILL. */
  stop(name: string, timeoutMs?: number): Promise<void> {
    try {
      this.assertOpen();
      const grace = timeoutMs === undefined ? undefined : validateTimeout(timeoutMs, 'timeoutMs');
      return this.control.requestStop(this.reg.unitsNamed(name), grace);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Stops every service whose name matches the glob (and what depends on them), dependents first. */
  stopAll(pattern: string, timeoutMs?: number): Promise<void> {
    try {
      this.assertOpen();
      const grace = timeoutMs === undefined ? undefined : validateTimeout(timeoutMs, 'timeoutMs');
      return this.control.requestStop(this.reg.matching(pattern), grace);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Stops the service (its dependents first) and starts it again, then its dependents. */
  restart(name: string): Promise<void> {
    try {
      this.assertOpen();
      return this.control.requestRestart(this.reg.unitsNamed(name));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Replaces every running instance of a service (a name, an instance's name, or a glob) with a new process
   * from its current spec and environment, without downtime: for each instance a replacement is started and
   * waited for until ready (the spec's readiness and startTimeoutMs), then swapped in, and the old process is
   * stopped gracefully (SIGTERM, stopTimeoutMs, SIGKILL; an adopted one too). N − minAvailable instances are
   * replaced at once (default one at a time); at every moment at least N are ready. Dependents are not
   * restarted. Each swap is a 'restart' history event with trigger 'reload' (counted in restarts, never
   * against restartLimit). A stopped service is started. With `listen`, the instances share the manager's
   * listening sockets, so no connection is lost while an old instance stops.
   *
   * Rejects with ReloadError (ERR_LIBIPC_RELOAD_FAILED) when a replacement does not get ready: it is stopped,
   * the reload stops there and the instances not replaced keep their old processes (`err.report` says what was
   * replaced); with ERR_LIBIPC_ILLEGAL_STATE while a reload of the same service is in progress (refused, not joined).
   */
  reload(name: string, opts?: ReloadOptions): Promise<ReloadReport> {
    try {
      this.assertOpen();
      const o = parseOptions(opts, { minAvailable: option.int(0, MAX_INSTANCES), spec: option.custom<unknown>((v) => typeof v === 'object' && v !== null, 'a ServiceSpec') }, 'reload options');
      if (o.spec !== undefined) this.redefineForReload(name, validateSpec(o.spec));
      const units = /[*?[\]{}!]/.test(name) ? this.reg.matching(name) : this.reg.unitsNamed(name);
      if (units.length === 0) throw new NotFoundError(`no service matches '${name}'`);
      return this.reloader.reload(units, { minAvailable: o.minAvailable });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** reload(name, { spec }): the new spec, for the replacements to run; only what a reload can change may differ. */
  private redefineForReload(name: string, spec: ServiceSpec): void {
    const old = this.reg.specs.get(name);
    if (!old || spec.name !== name) throw new InvalidArgumentError(`reload: spec.name must be the service reloaded ('${name}'), got '${spec.name}'`);
    const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    if (!same(old.instances, spec.instances) || !same([...(old.dependsOn ?? [])].sort(), [...(spec.dependsOn ?? [])].sort())) {
      throw new IllegalStateError(`reload of '${name}': its instances or dependencies changed; a reload keeps both — use start() with the new spec (it restarts the service)`);
    }
    this.reg.updateSpec(spec);
  }

  /** Stops a service and forgets it (and removes it from the store). Refused while another service depends on it. */
  async remove(name: string, timeoutMs?: number): Promise<void> {
    this.assertOpen();
    if (!this.reg.specs.has(name)) throw new NotFoundError(`no service named '${name}'${this.reg.units.has(name) ? ' (an instance: remove its service)' : ''}`);
    const dependents = this.reg.graph.dependentsOf(name);
    if (dependents.length > 0) {
      throw new IllegalStateError(`cannot remove '${name}': ${dependents.join(', ')} depend(s) on it; remove those dependencies first`);
    }
    const units = this.reg.unitsOf.get(name)!;
    await this.control.requestStop(units, timeoutMs === undefined ? undefined : validateTimeout(timeoutMs, 'timeoutMs'));
    this.reg.forget(name);
    this.triggers.sync();
    this.sockets.release(name);
  }

  status(name: string): ServiceStatus {
    if (typeof name !== 'string') throw new InvalidArgumentError(`name must be a string, got ${describeValue(name)}`);
    const u = this.reg.units.get(name);
    if (u) return this.reg.statusOf(u);
    if (this.reg.specs.has(name)) {
      throw new NotFoundError(`'${name}' runs as instances ${this.reg.unitsOf.get(name)!.map((x) => x.name).join(', ')}; use statusAll('${name}')`);
    }
    throw new NotFoundError(`no service named '${name}'`);
  }

  /** Statuses of every service whose name matches the glob (default all), by name. */
  statusAll(pattern = '*'): ServiceStatus[] {
    return this.reg
      .matching(pattern)
      .sort((a, b) => a.service.localeCompare(b.service) || a.index - b.index)
      .map((u) => this.reg.statusOf(u));
  }

  /** How many services matching the glob (default all) have a process (starting, running or stopping). */
  count(pattern = '*'): number {
    let n = 0;
    for (const u of this.reg.matching(pattern)) if (hasProcess(u.state)) n++;
    return n;
  }

  /** Replaces the global environment; services get it (under their own env) from their next start. */
  setGlobalEnv(env: Record<string, string>): void {
    const r = envSchema.safeParse(env);
    if (!r.success) throw new InvalidArgumentError(`setGlobalEnv: env must be an object of strings, got ${describeValue(env)}`);
    this.globalEnv = { ...r.data };
  }

  /** `name` now depends on `dependsOn` (both known services); refused with ERR_LIBIPC_CYCLE when that closes a cycle. */
  addDependency(name: string, dependsOn: string): void {
    this.assertOpen();
    this.reg.requireService(name);
    this.reg.requireService(dependsOn);
    this.reg.graph.addEdge(name, dependsOn);
    const spec = this.reg.specs.get(name)!;
    const deps = [...(spec.dependsOn ?? [])];
    if (!deps.includes(dependsOn)) deps.push(dependsOn);
    this.reg.updateSpec({ ...spec, dependsOn: deps });
    // A running service must have its dependencies running: start the new one if needed.
    const units = this.reg.unitsOf.get(name)!;
    if (units.some((u) => u.desired === 'running')) {
      for (const s of this.reg.graph.dependencyClosure([dependsOn])) for (const u of this.reg.unitsOf.get(s)!) this.control.setDesired(u, 'running');
    }
    this.control.schedule();
  }

  removeDependency(name: string, dependsOn: string): void {
    this.assertOpen();
    this.reg.requireService(name);
    this.reg.requireService(dependsOn);
    this.reg.graph.removeEdge(name, dependsOn);
    const spec = this.reg.specs.get(name)!;
    const deps = (spec.dependsOn ?? []).filter((d) => d !== dependsOn);
    const next: ServiceSpec = { ...spec, dependsOn: deps };
    if (deps.length === 0) delete next.dependsOn;
    this.reg.updateSpec(next);
    this.control.schedule();
  }

  /** Every intervalMs (default 1000): correct drift (processes gone behind our back, specs changed in the store). */
  startReconciler(intervalMs: number = DEFAULT_RECONCILE_MS): void {
    this.assertOpen();
    const ms = parseOptions({ intervalMs }, { intervalMs: option.ms(10, MAX_TIMER_MS) }, 'startReconciler').intervalMs ?? DEFAULT_RECONCILE_MS;
    this.reconciler.start(ms);
  }

  stopReconciler(): void {
    this.reconciler.stop();
  }

  /** One reconciliation now (what the reconciler does every interval). */
  reconcile(): Promise<void> {
    return this.reconciler.runOnce();
  }

  /**
   * Stops every service, dependents first (reverse topological order), each with `timeoutMs` of grace
   * (default: its stopTimeoutMs); stops the reconciler; flushes the sinks; releases the store. The store
   * keeps what should run, so the next Manager on it starts it again.
   */
  shutdown(timeoutMs?: number): Promise<void> {
    if (this.shutdownPromise) return this.shutdownPromise;
    let grace: number | undefined;
    try {
      grace = timeoutMs === undefined ? undefined : validateTimeout(timeoutMs, 'timeoutMs');
    } catch (err) {
      return Promise.reject(err);
    }
    this.shutdownPromise = this.doShutdown(grace);
    return this.shutdownPromise;
  }

  /**
   * A service's log lines (timestamp-prefixed), from its files: `await manager.logs(name, { lines })` gives
   * the last lines; `for await (const line of manager.logs(name, { follow: true }))` gives them and then each
   * new one. Only for services with `logs: { dir }`.
   */
  logs(name: string, opts?: LogsOptions): LogReader {
    const o = parseOptions(opts, { lines: option.int(0, 1_000_000), follow: option.boolean(), stream: option.oneOf('stdout', 'stderr', 'both') }, 'logs options');
    const u = this.reg.units.get(name);
    if (!u) throw new NotFoundError(`no service named '${name}'${this.reg.specs.has(name) ? ' (it runs as instances: ask for one of them)' : ''}`);
    const l = u.spec.logs;
    if (typeof l === 'string') {
      throw new IllegalStateError(`${name} does not log to files (logs: '${l}'); give its spec logs: { dir } to read its output back`);
    }
    return readLogs(u, l, o.lines ?? 100, o.stream ?? 'both', o.follow === true, () => this.control.closed || u.removing);
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.control.closed || this.control.shuttingDown) throw new ClosedError('this Manager was shut down; create a new one');
  }

  private reconcileOnce(): void {
    if (this.control.closed || this.control.shuttingDown) return;
    const changes = reconcileOnce(this.parts);
    if (changes.length > 0) this.emit('reconcile', { changes });
  }

  private async doShutdown(grace: number | undefined): Promise<void> {
    this.reconciler.stop();
    this.control.shuttingDown = true;
    // No trigger restarts what shutdown stops.
    const triggersClosed = this.triggers.close();
    const waits: Promise<void>[] = [];
    for (const u of this.reg.units.values()) {
      u.desired = 'stopped';
      u.bounce = false;
      if (grace !== undefined) u.stopGrace = grace;
      waits.push(this.control.waitFor(u, 'stopped').catch(() => {}));
    }
    this.control.schedule();
    await Promise.all([...waits, this.reloader.abortAll()]);
    await triggersClosed;
    this.sockets.closeAll();
    for (const u of this.reg.units.values()) {
      closeLogs(u, true);
      u.adopted?.abort.abort();
      u.mp?.removeAllListeners();
      this.books.persist(u);
    }
    await this.out.idle(SHUTDOWN_SINK_DRAIN_MS);
    this.books.release();
    this.control.closed = true;
    this.emit('shutdown');
  }
}

/** The files a manager writes itself (its store, file sinks): a service's watch never restarts on them. */
function ownFiles(store: Store | string | undefined, sinks: unknown[]): string[] {
  const out: string[] = [];
  for (const x of [store, ...sinks]) {
    const path = typeof x === 'string' ? x : (x as { path?: unknown } | undefined)?.path;
    if (typeof path === 'string' && path !== '') out.push(resolvePath(path));
  }
  return out;
}
