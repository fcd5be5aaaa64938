import { DEFAULT_RESTART_POLICY, type ExitStatus, ManagedProcess } from '@libipc/process';
import { ExitedEarlyError, LibipcError, SystemError, watchExit } from '@libipc/shm';
import { type Identity, alive, exitOfGone, identityOf, signal, startedAtMs, stopAdopted } from './adoption.js';
import type { Announcer } from './announcer.js';
import type { Control } from './control.js';
import { launchSpec } from './launch.js';
import type { ListenSockets } from './listen-sockets.js';
import type { Persistence } from './persistence.js';
import { CancelledError, afterAdoptedExit, limitReached } from './planner.js';
import { describeReadiness, needsProbe, probe } from './readiness.js';
import type { ServiceState } from './states.js';
import type { RestartCause, RestartTrigger, Unit } from './unit.js';
import { drainLogs, openLogs, reattachLogs } from './unit-logs.js';

/**
 * Carries out the planner's actions on a unit's process — our own ManagedProcess, or a process adopted from an
 * earlier manager — and turns what the process reports into the unit's state and history.
 */
export class Executor {
  startsInFlight = 0;

  constructor(
    private readonly control: Control,
    private readonly books: Persistence,
    private readonly out: Announcer,
    private readonly env: () => Record<string, string>,
    readonly sockets: ListenSockets,
  ) {}

  private to(u: Unit, state: ServiceState, reason: string): void {
    this.control.to(u, state, reason);
  }

  /** A start or stop is over: answer the unit's waiters, decide again. */
  private done(u: Unit): void {
    this.control.releaseSocketsIfIdle(u.service);
    this.control.settle(u);
    this.control.schedule();
  }

  /** A restart begins (or is scheduled): the unit's lastRestart and the 'restart' history event. */
  private restarted(u: Unit, trigger: RestartTrigger, reason: string, extra: { backoffMs?: number; restarts: number }): void {
    u.lastRestart = { trigger, reason, time: new Date() };
    // A crash overtook a trigger's restart: that trigger must not label a later one.
    if (trigger === 'crash') u.restartTrigger = undefined;
    this.out.history(u, 'restart', { ...extra, reason, trigger });
  }

  // ---- actions ----

  async start(u: Unit): Promise<void> {
    u.starting = true;
    this.startsInFlight++;
    try {
      if (typeof u.spec.logs === 'object' && !u.logs) {
        try {
          await openLogs(u, u.spec.logs, () => u.removing || this.control.closed, (err) => this.out.warn(err));
        } catch (err) {
          // It would fail the same way at once again: failed, until start() after the folder is fixed.
          const e = err instanceof LibipcError ? err : systemError(err, `cannot set up the log files of ${u.name} in ${u.spec.logs.dir}`);
          if (u.state === 'stopped' && u.desired === 'running') {
            this.to(u, 'failed', e.message);
            this.out.history(u, 'failed', { reason: e.message, restarts: u.restarts });
          }
          throw e;
        }
      }
      // Asked otherwise meanwhile?
      if (u.desired !== 'running' || u.removing || this.control.closed || u.state !== 'stopped') return;
      const cause = u.restartCause;
      if (cause) {
        if (cause === 'crash' && limitReached(u.spec.restartLimit, u.contractRestarts)) {
          this.to(u, 'failed', `restart limit ${u.spec.restartLimit} reached (${u.contractRestarts} restart(s) after crashes); ${u.reason ?? ''}`.trim());
          this.out.history(u, 'failed', { restarts: u.restarts, reason: u.reason });
          return;
        }
        u.restarts++;
        if (cause === 'crash') u.contractRestarts++;
        u.restartCause = undefined;
        // A trigger's own reason ("memory: RSS …"), else what the restart follows.
        const t = u.restartTrigger ?? { trigger: cause, reason: u.restartNote ? `after ${u.restartNote}` : (u.reason ?? cause) };
        this.restarted(u, t.trigger, t.reason, { backoffMs: 0, restarts: u.restarts });
        u.restartTrigger = undefined;
        u.restartNote = undefined;
      }
      let mp: ManagedProcess;
      try {
        mp = this.processFor(u);
      } catch (err) {
        this.to(u, 'starting', 'start');
        this.to(u, 'failed', (err as Error).message);
        this.out.history(u, 'failed', { reason: (err as Error).message, restarts: u.restarts });
        throw err;
      }
      this.to(u, 'starting', u.restarts > 0 && cause ? `restart #${u.restarts}` : 'start()');
      await mp.start();
      if (u.probe) await u.probe;
    } catch (err) {
      // This attempt failed (the policy may retry): the callers waiting for it are told now.
      if (!(err instanceof CancelledError) && u.desired === 'running' && !u.stopping) {
        const failed = u.waiters.filter((w) => w.kind === 'running');
        u.waiters = u.waiters.filter((w) => w.kind !== 'running');
        for (const w of failed) w.reject(err);
      }
    } finally {
      u.starting = false;
      this.startsInFlight--;
      this.done(u);
    }
  }

  async stop(u: Unit, reason: string, restartCause: RestartCause | undefined): Promise<void> {
    u.stopping = true;
    const grace = u.stopGrace ?? u.spec.stopTimeoutMs;
    u.stopReason = reason;
    // Decided now, not when the stop is over: a start() meanwhile may change it.
    if (u.desired === 'running' && restartCause) u.restartCause ??= restartCause;
    try {
      u.probeAbort?.abort(new CancelledError(`start of ${u.name} was cancelled: ${reason}`));
      if (u.adopted) {
        const { id } = u.adopted;
        this.to(u, 'stopping', reason);
        await stopAdopted(id, grace);
        if (u.adopted?.id === id) this.adoptedGone(u, id);
        this.to(u, 'stopped', reason);
        this.out.history(u, 'stop', { pid: id.pid, reason });
      } else if (u.mp) {
        await u.mp.stop(grace);
        // A ManagedProcess still spawning when asked reports through its state events; make sure we are stopped.
        if (u.state === 'starting' || u.state === 'running' || u.state === 'stopping') {
          if (u.state !== 'stopping') this.to(u, 'stopping', reason);
          this.to(u, 'stopped', reason);
        }
      }
    } catch (err) {
      this.out.warn(err);
    } finally {
      u.stopping = false;
      u.stopGrace = undefined;
      u.stopReason = undefined;
      if (u.desired !== 'running') u.restartTrigger = undefined;
      if (u.state === 'stopped') {
        if (u.bounce) {
          u.bounce = false;
          u.restartCause = 'manual';
        } else if (u.desired !== 'running') {
          u.restartCause = undefined;
        }
      }
      this.done(u);
    }
  }

  async cancelBackoff(u: Unit, reason: string): Promise<void> {
    u.stopping = true;
    u.stopReason = reason;
    try {
      if (u.backoffTimer) {
        clearTimeout(u.backoffTimer);
        u.backoffTimer = undefined;
        this.to(u, 'stopped', reason);
      } else if (u.mp) {
        await u.mp.stop(0);
      }
      if (u.state === 'backoff') this.to(u, 'stopped', reason);
    } catch (err) {
      this.out.warn(err);
    } finally {
      u.stopping = false;
      u.stopReason = undefined;
      if (u.desired !== 'running') u.restartCause = undefined;
      this.done(u);
    }
  }

  /** The unit's ManagedProcess, built anew when its spec, the environment or its listening sockets changed. */
  private processFor(u: Unit): ManagedProcess {
    const { mp, key } = this.newProcess(u);
    // Same spec object, global env object and sockets: same ManagedProcess (specs and env are replaced, never mutated).
    if (u.mp && u.mpKey?.spec === key.spec && u.mpKey.env === key.env && u.mpKey.fds === key.fds) return u.mp;
    u.mp?.removeAllListeners();
    this.wire(u, mp);
    u.mp = mp;
    u.mpKey = key;
    u.failing = false;
    return mp;
  }

  /**
   * A ManagedProcess for the unit from its current spec and environment (the executable checked, its listening
   * sockets opened: this throws what they throw), not yet the unit's.
   */
  newProcess(u: Unit): { mp: ManagedProcess; key: NonNullable<Unit['mpKey']> } {
    const env = this.env();
    const fds = u.spec.listen.length > 0 ? this.sockets.fdsFor(u.service, u.spec.listen) : [];
    return { mp: new ManagedProcess(launchSpec(u, env, fds)), key: { spec: u.raw, env, fds: fds.join(',') } };
  }

  /** What `mp` reports becomes the unit's state and history — once it is the unit's (u.mp), not before. */
  wire(u: Unit, mp: ManagedProcess): void {
    mp.on('state', (t: { from: string; to: string; reason: string }) => this.onProcessState(u, mp, t));
    mp.on('spawn', (pid: number) => this.onSpawn(u, mp, pid));
    mp.on('exit', (st: ExitStatus, pid: number) => this.onExit(u, mp, st, pid));
  }

  // ---- what the ManagedProcess reports ----

  private onSpawn(u: Unit, mp: ManagedProcess, pid: number): void {
    if (u.mp !== mp) return;
    u.pid = pid;
    u.startTime = identityOf(pid)?.startTime;
    u.startedAt = Date.now();
    u.generation++;
    this.books.persist(u);
    this.out.history(u, 'start', { pid, startTime: u.startTime?.toString() });
  }

  private onExit(u: Unit, mp: ManagedProcess, st: ExitStatus, pid: number): void {
    if (u.mp !== mp) return;
    u.lastExit = { ...st, time: new Date() };
    if (u.pid === pid) {
      u.pid = undefined;
      u.startTime = undefined;
    }
    drainLogs(u, true);
    this.books.persist(u);
    this.out.history(u, 'exit', { pid, exitCode: st.exitCode, signal: st.signal });
  }

  private onProcessState(u: Unit, mp: ManagedProcess, t: { from: string; to: string; reason: string }): void {
    if (u.mp !== mp) return;
    if (t.from === 'running' && u.probeAbort) {
      const st = u.lastExit;
      const how = st ? (st.signal ? `signal ${st.signal}` : `exit code ${st.exitCode}`) : 'an unknown status';
      u.probeAbort.abort(
        new ExitedEarlyError(`${u.name} exited with ${how} before it ${describeReadiness(u.spec.readiness)}`, {
          exitCode: st?.exitCode ?? null,
          signal: st?.signal ?? null,
        }),
      );
    }
    switch (t.to) {
      case 'starting':
        if (t.from === 'backoff' && u.restartCause) {
          u.restarts++;
          if (u.restartCause === 'crash') u.contractRestarts++;
          u.restartCause = undefined;
        }
        this.to(u, 'starting', t.reason);
        break;
      case 'running':
        if (needsProbe(u.spec.readiness)) {
          u.probe = this.runProbe(u, mp);
          u.probe.catch(() => {});
        } else {
          this.to(u, 'running', t.reason);
          this.out.history(u, 'ready', { pid: u.pid, reason: describeReadiness(u.spec.readiness) });
        }
        break;
      case 'backoff': {
        u.restartCause = 'crash';
        if (limitReached(u.spec.restartLimit, u.contractRestarts)) {
          // The contract is used up: cancel the policy's pending restart.
          u.failing = true;
          mp.stop(0).catch(() => {});
          const why = `${t.reason.replace(/; restarting in \d+ ms$/, '')}; restart limit ${u.spec.restartLimit} reached`;
          this.to(u, 'failed', why);
          this.out.history(u, 'failed', { restarts: u.restarts, reason: why });
        } else {
          this.to(u, 'backoff', t.reason);
          // ManagedProcess says the delay in its reason ("…; restarting in 100 ms").
          const said = /restarting in (\d+) ms/.exec(t.reason);
          const next = mp.status().nextRestartAt;
          const backoffMs = said ? Number(said[1]) : next ? Math.max(0, next.getTime() - Date.now()) : undefined;
          this.restarted(u, 'crash', t.reason, { backoffMs, restarts: u.restarts });
        }
        break;
      }
      case 'stopping':
        if (u.state === 'starting' || u.state === 'running') this.to(u, 'stopping', u.stopReason ?? t.reason);
        break;
      case 'stopped':
        if (t.from === 'stopping') {
          if (u.state === 'stopping') {
            const why = u.stopReason ?? t.reason;
            this.to(u, 'stopped', why);
            this.out.history(u, 'stop', { reason: why });
          }
        } else if (t.from === 'backoff') {
          if (u.failing) u.failing = false;
          else if (u.state === 'backoff') this.to(u, 'stopped', u.stopReason ?? t.reason);
        } else if (t.from === 'starting' || t.from === 'running') {
          // Ended on its own and the policy does not restart it.
          if (u.state === 'starting' || u.state === 'running') this.to(u, 'exited', t.reason);
        }
        break;
      case 'failed':
        if (u.state !== 'failed') {
          this.to(u, 'failed', t.reason);
          this.out.history(u, 'failed', { restarts: u.restarts, reason: t.reason });
        }
        break;
    }
    this.control.schedule();
  }

  private async runProbe(u: Unit, mp: ManagedProcess): Promise<void> {
    const r = u.spec.readiness as { tcp: number } | { http: string };
    const ac = new AbortController();
    u.probeAbort = ac;
    const generation = u.generation;
    const pid = u.pid;
    try {
      await probe(r, u.name, u.spec.startTimeoutMs, ac.signal);
      if (u.mp === mp && u.generation === generation && mp.state === 'running' && u.state === 'starting') {
        this.to(u, 'running', describeReadiness(r));
        this.out.history(u, 'ready', { pid, reason: describeReadiness(r) });
      }
    } catch (err) {
      if (!ac.signal.aborted && u.mp === mp && u.generation === generation && pid !== undefined) {
        // Not ready in time: end it like any failed start; its policy decides about a restart.
        u.reason = (err as Error).message;
        const id = u.startTime === undefined ? undefined : { pid, startTime: u.startTime };
        if (id) {
          signal(id, 'SIGTERM');
          setTimeout(() => signal(id, 'SIGKILL'), u.spec.stopTimeoutMs).unref();
        }
      }
      throw err;
    } finally {
      if (u.probeAbort === ac) u.probeAbort = undefined;
      if (u.generation === generation) u.probe = undefined;
    }
  }

  // ---- adopted processes ----

  /** Takes over a live process of an earlier manager (`how`: how it was found). */
  adopt(u: Unit, id: Identity, how: string): void {
    const ac = new AbortController();
    u.adopted = { id, abort: ac };
    u.pid = id.pid;
    u.startTime = id.startTime;
    u.startedAt = startedAtMs(id.startTime);
    u.generation++;
    if (typeof u.spec.logs === 'object') reattachLogs(u, u.spec.logs, id.pid, (err) => this.out.warn(err));
    this.to(u, 'running', `adopted pid ${id.pid} (${how})`);
    this.out.history(u, 'adopt', { pid: id.pid, startTime: id.startTime.toString(), reason: how });
    // Not our child: its exit is seen through a pidfd.
    watchExit(id.pid, id.startTime, { signal: ac.signal, ref: false }).then(
      () => this.onAdoptedExit(u, id),
      () => {},
    );
  }

  /** The reconciler's back-up for the pidfd watch: adopted processes that died unnoticed. One line per one found. */
  checkAdopted(units: Iterable<Unit>): string[] {
    const changes: string[] = [];
    for (const u of units) {
      if (u.adopted && !u.stopping && !alive(u.adopted.id)) {
        changes.push(`${u.name}: pid ${u.adopted.id.pid} is gone`);
        this.onAdoptedExit(u, u.adopted.id);
      }
    }
    return changes;
  }

  private adoptedGone(u: Unit, id: Identity): ExitStatus {
    const st = exitOfGone(id);
    u.adopted?.abort.abort();
    u.adopted = undefined;
    u.pid = undefined;
    u.startTime = undefined;
    u.lastExit = { ...st, time: new Date() };
    drainLogs(u, true);
    this.out.history(u, 'exit', { pid: id.pid, exitCode: st.exitCode, signal: st.signal });
    return st;
  }

  /** An adopted process ended by itself: the spec's restart policy decides, as it would for our own child. */
  private onAdoptedExit(u: Unit, id: Identity): void {
    if (u.adopted?.id !== id || u.stopping || this.control.closed) return;
    const st = this.adoptedGone(u, id);
    const next = afterAdoptedExit(u.spec.restart ?? DEFAULT_RESTART_POLICY, st, u.spec.restartLimit, u.contractRestarts);
    if (next.to !== 'backoff') {
      this.to(u, next.to, next.reason);
      if (next.to === 'failed') this.out.history(u, 'failed', { restarts: u.restarts, reason: u.reason });
    } else {
      u.restartCause = 'crash';
      const delay = next.delayMs!;
      this.to(u, 'backoff', next.reason);
      this.restarted(u, 'crash', next.reason, { backoffMs: delay, restarts: u.restarts });
      u.backoffTimer = setTimeout(() => {
        u.backoffTimer = undefined;
        if (u.state === 'backoff' && !u.stopping) this.to(u, 'stopped', 'backoff over: restarting');
      }, delay);
    }
    this.control.schedule();
  }
}

function systemError(err: unknown, what: string): SystemError {
  const e = err as NodeJS.ErrnoException;
  // Each service with log files holds a few descriptors in the manager: at a low limit that is what runs out.
  const hint =
    e.code === 'EMFILE' || e.code === 'ENFILE'
      ? '; this manager reached its open-file limit (ulimit -n): raise it (ulimit -n 65536, or LimitNOFILE= in a systemd unit) or run fewer services with log files'
      : '';
  return new SystemError(`${what}: ${e.message}${hint}`, { errno: e.code ?? 'EIO', syscall: e.syscall ?? 'open', cause: err });
}
