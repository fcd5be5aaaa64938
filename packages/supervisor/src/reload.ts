import type { ServiceSpec } from './spec.js';
import type { ManagedProcess } from '@libipc/process';
import { IllegalStateError, LibipcError } from '@libipc/shm';
import { identityOf, stopAdopted } from './adoption.js';
import type { Announcer } from './announcer.js';
import type { Control } from './control.js';
import type { Persistence } from './persistence.js';
import { describeReadiness, needsProbe, probe } from './readiness.js';
import type { Registry } from './registry.js';
import { type SlotPhase, nextReloadStep, reloadBatch, reloadScope, swapVerdict } from './reload-plan.js';
import type { Unit } from './unit.js';

export interface ReloadOptions {
  /** Instances that must stay ready throughout (default N − 1: one replaced at a time); N − minAvailable are replaced at once. */
  minAvailable?: number;
  /**
   * The service's new spec (same name, instance count and dependencies): the replacements run it — a new version's
   * arguments or environment (`libipc reload <file> --env production`). Without it, the current spec.
   */
  spec?: ServiceSpec;
}

/** One instance whose process a reload replaced. */
export interface ReplacedInstance {
  name: string;
  /** The process that served before (undefined when it was already gone). */
  oldPid: number | undefined;
  newPid: number;
}

/** What a reload did. */
export interface ReloadReport {
  /** The services reloaded, in the order they were. */
  services: string[];
  /** Instances whose process was replaced by a new one (started and ready before the old one was stopped). */
  replaced: ReplacedInstance[];
  /** Instances started because their service was stopped: a reload of a stopped service is a start. */
  started: string[];
  /** Instances left as they were, and why (not running: the manager starts them from the current spec anyway). */
  skipped: Array<{ name: string; reason: string }>;
}

/**
 * A reload stopped before it replaced everything: a replacement did not get ready (the cause: a TimeoutError,
 * an ExitedEarlyError, …) or the service was stopped meanwhile. The instances not yet replaced keep their old
 * processes, which keep serving; `report.replaced` lists what was replaced before.
 */
export class ReloadError extends LibipcError {
  /** The instance whose replacement failed. */
  readonly instance: string;
  readonly report: ReloadReport;
  constructor(message: string, details: { instance: string; report: ReloadReport; cause?: unknown }) {
    super('ERR_LIBIPC_RELOAD_FAILED', message, { cause: details.cause });
    this.instance = details.instance;
    this.report = details.report;
  }
}

/** Carries out Manager.reload(): one service at a time, its instances a batch at a time (see reload-plan.ts). */
export class Reloader {
  private readonly busy = new Set<string>();
  /** Replacements not swapped in yet, by the instance they replace: stopped at once when it stops or the manager shuts down. */
  private readonly replacements = new Map<ManagedProcess, Unit>();
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly reg: Registry,
    private readonly control: Control,
    private readonly books: Persistence,
    private readonly out: Announcer,
  ) {}

  /** Reloads `units` (grouped by service, dependencies first). Refused while one of their services is reloading. */
  reload(units: Unit[], opts: ReloadOptions): Promise<ReloadReport> {
    const services = this.reg.graph.topologicalOrder(new Set(units.map((u) => u.service)));
    const taken = services.filter((s) => this.busy.has(s));
    if (taken.length > 0) {
      return Promise.reject(new IllegalStateError(`a reload of ${taken.join(', ')} is in progress; wait for it to finish (a second reload is refused, not queued)`));
    }
    for (const s of services) this.busy.add(s);
    const p = this.run(services, units, opts).finally(() => {
      for (const s of services) this.busy.delete(s);
    });
    const settled = p.catch(() => {});
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return p;
  }

  /** Shutdown: replacements still getting ready are stopped; resolves once every reload ended. */
  async abortAll(): Promise<void> {
    await Promise.all([...this.replacements.keys()].map((mp) => mp.stop(0).catch(() => {})));
    await Promise.all(this.running);
  }

  /** An instance leaves 'running' (stop(), a crash) while its replacement gets ready: no reason to wait for it. */
  onStateChange(u: Unit, c: { to: string }): void {
    if (c.to === 'running') return;
    for (const [mp, of] of this.replacements) if (of === u) mp.stop(0).catch(() => {});
  }

  private async run(services: string[], units: Unit[], opts: ReloadOptions): Promise<ReloadReport> {
    const report: ReloadReport = { services, replaced: [], started: [], skipped: [] };
    for (const service of services) {
      const mine = units.filter((u) => u.service === service);
      const scope = reloadScope(mine);
      if (scope.mode === 'start') {
        await this.control.requestStart(mine);
        report.started.push(...mine.map((u) => u.name));
        continue;
      }
      report.skipped.push(...scope.skipped);
      await this.replaceAll(service, mine.filter((u) => scope.replace.includes(u.name)), reloadBatch(this.reg.unitsOf.get(service)?.length ?? mine.length, opts.minAvailable), report);
    }
    return report;
  }

  private async replaceAll(service: string, units: Unit[], batch: number, report: ReloadReport): Promise<void> {
    const slots = units.map((u) => ({ name: u.name, phase: 'pending' as SlotPhase }));
    const errors = new Map<string, unknown>();
    const inFlight = new Set<Promise<void>>();
    for (;;) {
      const step = nextReloadStep(slots, batch);
      if (step.kind === 'done') return;
      if (step.kind === 'abort') {
        const name = step.failed[0]!;
        const cause = errors.get(name);
        const done = report.replaced.length > 0 ? `; replaced before it: ${report.replaced.map((r) => r.name).join(', ')}` : '';
        throw new ReloadError(
          `reload of ${service} stopped at ${name}: ${(cause as Error)?.message ?? String(cause)}; the instances not replaced keep serving with their old processes${done}`,
          { instance: name, report, cause },
        );
      }
      if (step.kind === 'replace') {
        for (const name of step.names) {
          const slot = slots.find((s) => s.name === name)!;
          const u = units.find((x) => x.name === name)!;
          slot.phase = 'replacing';
          const t = this.replaceOne(u, (p) => (slot.phase = p), report).then(
            () => void (slot.phase = 'done'),
            (err: unknown) => {
              errors.set(name, err);
              slot.phase = 'failed';
            },
          );
          inFlight.add(t);
          void t.then(() => inFlight.delete(t));
        }
      }
      await Promise.race(inFlight);
    }
  }

  /** Starts a replacement of `u`, waits until it is ready, swaps it in, stops the old process. Throws when the replacement failed. */
  private async replaceOne(u: Unit, phase: (p: SlotPhase) => void, report: ReloadReport): Promise<void> {
    const generation = u.generation;
    const exec = this.control.exec;
    const { mp, key } = exec.newProcess(u);
    exec.wire(u, mp); // ignored until it is u.mp
    this.replacements.set(mp, u);
    const grace = u.spec.stopTimeoutMs;
    try {
      try {
        await mp.start();
        const r = u.spec.readiness;
        if (needsProbe(r)) await probe(r, u.name, u.spec.startTimeoutMs, AbortSignal.timeout(u.spec.startTimeoutMs + 1000));
      } catch (err) {
        await this.discard(mp, grace);
        if (u.state === 'running' || !(err instanceof IllegalStateError)) throw err;
        // Cancelled by onStateChange: say why.
        throw new IllegalStateError(`${u.name} left 'running' (${u.state}: ${u.reason ?? ''}) while its replacement started; run the reload again once it runs`);
      }
      const verdict = swapVerdict({ state: u.state, desired: u.desired, stopping: u.stopping, removing: u.removing, generation: u.generation, closing: this.control.shuttingDown || this.control.closed }, generation);
      if (verdict !== 'swap') {
        await this.discard(mp, grace);
        if (verdict === 'restarted') return;
        throw new IllegalStateError(`${u.name} was ${u.removing ? 'removed' : u.desired !== 'running' ? 'stopped' : `left ${u.state}`} while its replacement started; run the reload again once it runs`);
      }
      this.replacements.delete(mp);
      const old = { mp: u.mp, adopted: u.adopted, pid: u.pid };
      this.swapIn(u, mp, key);
      report.replaced.push({ name: u.name, oldPid: old.pid, newPid: mp.pid! });
      phase('stopping-old');
      await this.stopOld(u, old, grace);
    } finally {
      this.replacements.delete(mp);
    }
  }

  private async discard(mp: ManagedProcess, grace: number): Promise<void> {
    mp.removeAllListeners();
    await mp.stop(grace).catch(() => {});
  }

  /** The unit now is the new process: its pid, identity, generation; a restart with trigger 'reload'. */
  private swapIn(u: Unit, mp: ManagedProcess, key: NonNullable<Unit['mpKey']>): void {
    const oldPid = u.pid;
    const pid = mp.pid!;
    u.adopted?.abort.abort();
    u.adopted = undefined;
    u.mp = mp;
    u.mpKey = key;
    u.failing = false;
    u.pid = pid;
    u.startTime = identityOf(pid)?.startTime;
    u.startedAt = Date.now();
    u.generation++;
    // A planned restart: counted, never against the restart contract (restartLimit).
    u.restarts++;
    const reason = `reload: pid ${pid} replaced pid ${oldPid ?? '(none)'}`;
    u.lastRestart = { trigger: 'reload', reason, time: new Date() };
    this.out.history(u, 'restart', { trigger: 'reload', restarts: u.restarts, reason, backoffMs: 0 });
    this.out.history(u, 'start', { pid, startTime: u.startTime?.toString() });
    this.out.history(u, 'ready', { pid, reason: describeReadiness(u.spec.readiness) });
    this.control.to(u, 'running', `reloaded (pid ${pid})`);
    this.books.persist(u);
  }

  /** SIGTERM, stopTimeoutMs, SIGKILL: our own child, or a process adopted from an earlier manager. */
  private async stopOld(u: Unit, old: { mp: ManagedProcess | undefined; adopted: Unit['adopted']; pid: number | undefined }, grace: number): Promise<void> {
    const reason = 'replaced by reload';
    try {
      if (old.adopted) {
        await stopAdopted(old.adopted.id, grace);
      } else if (old.mp) {
        old.mp.removeAllListeners();
        await old.mp.stop(grace);
      }
    } catch (err) {
      this.out.warn(err);
    }
    if (old.pid !== undefined) this.out.history(u, 'stop', { pid: old.pid, reason });
  }
}
