import { EventEmitter } from 'node:events';
import { describeValue, IllegalStateError, InvalidArgumentError, MAX_TIMER_MS, option, parseOptions, validateName, validateTimeout } from '@libipc/shm';
import { Backoff } from './backoff.js';
import { type ExitStatus, describeExit } from './exit-status.js';
import { waitForReady } from './ready.js';
import { type ResolvedRestartPolicy, type RestartPolicy, afterExit, resolveRestartPolicy } from './restart-policy.js';
import { DEFAULT_GRACE_MS, forceKill, shutdown } from './shutdown.js';
import { type RegistryView, waitForRegistration } from './spawn-and-wait.js';
import { type ProcessHandle, SPAWN_OPTIONS, spawn, validateSpawnOptions } from './spawn.js';
import { type ProcessState, StateMachine, type Transition } from './state-machine.js';

/** When a starting process counts as running: at spawn, when it writes READY, or when it registers a name. */
export type Readiness = 'spawn' | 'ready' | { registered: string; domain?: string };

export interface ManagedProcessSpec {
  name: string;
  command: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  restart?: RestartPolicy;
  readiness?: Readiness;
  /** How long 'ready' / 'registered' readiness may take (default 10 000). */
  readyTimeoutMs?: number;
  /** Grace period of stop() between SIGTERM and SIGKILL (default 3000). */
  stopTimeoutMs?: number;
  stdio?: 'inherit' | 'pipe' | 'ignore';
  /** Own process group; stop and restart signal the whole tree. */
  killTree?: boolean;
  /** Open fds of this process each child gets as its fds 4, 5, … (see spawn()); they must stay open while it restarts. */
  inheritFds?: number[];
}

export interface ManagedProcessStatus {
  name: string;
  state: ProcessState;
  pid?: number;
  restarts: number;
  startedAt?: Date;
  lastExit?: ExitStatus;
  nextRestartAt?: Date;
  /** Why it entered its current state (e.g. why it failed). */
  reason?: string;
}

export const DEFAULT_READY_TIMEOUT_MS = 10_000;
const REGISTRY_MODULE: string = '@libipc/registry';

const NEVER_RAN: Readonly<ExitStatus> = Object.freeze({ reason: 'exited', exited: false, exitCode: null, signaled: false, signal: null });

const SPEC_OPTIONS = {
  name: option.custom<string>(() => true, 'a name'), // checked by validateName (ERR_LIBIPC_INVALID_NAME)
  command: option.custom<string>(() => true, 'a command'),
  args: option.custom<string[]>((v) => Array.isArray(v) && v.length <= 4096 && v.every((a) => typeof a === 'string'), 'an array of strings'),
  env: SPAWN_OPTIONS.env,
  cwd: SPAWN_OPTIONS.cwd,
  restart: option.custom<RestartPolicy>((v) => typeof v === 'object' && v !== null, 'a RestartPolicy object'),
  readiness: option.custom<Readiness>(() => true, "'spawn', 'ready' or { registered, domain? }"),
  readyTimeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }),
  stopTimeoutMs: option.ms(0, 3_600_000),
  stdio: SPAWN_OPTIONS.stdio,
  killTree: SPAWN_OPTIONS.killTree,
  inheritFds: SPAWN_OPTIONS.inheritFds,
};

/** A start/restart that a later stop() overtook. */
class CancelledError extends IllegalStateError {}

/**
 * One named process kept running by a restart policy. States: stopped → starting → running → stopping →
 * stopped; running → backoff → starting; → failed. Every transition is emitted as 'state' {from, to, reason};
 * each exit of the child as 'exit' (ExitStatus, pid). Calls are serialized: concurrent start/stop settle in call order.
 */
export class ManagedProcess extends EventEmitter {
  readonly name: string;
  private readonly spec: ManagedProcessSpec;
  private readonly policy: ResolvedRestartPolicy;
  private readonly readiness: Readiness;
  private readonly readyTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly sm: StateMachine;
  private readonly backoff: Backoff;
  private queue: Promise<unknown> = Promise.resolve();
  private handle: ProcessHandle | undefined;
  private stopGeneration = 0;
  private startAbort: AbortController | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private uptimeTimer: NodeJS.Timeout | undefined;
  private restartTimes: number[] = [];
  private restartCount = 0;
  private startedAt: Date | undefined;
  private lastExit: ExitStatus | undefined;
  private nextRestartAt: Date | undefined;
  private lastReason: string | undefined;

  constructor(spec: ManagedProcessSpec) {
    super();
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new InvalidArgumentError('ManagedProcess needs a spec object: { name, command, … }');
    }
    spec = parseOptions(spec, SPEC_OPTIONS, 'ManagedProcess spec') as ManagedProcessSpec;
    validateName(spec.name, 'process name');
    if (typeof spec.command !== 'string' || spec.command === '') {
      throw new InvalidArgumentError(`command of ${spec.name} must be a non-empty string, got ${describeValue(spec.command)}`);
    }
    validateSpawnOptions({ env: spec.env, cwd: spec.cwd, stdio: spec.stdio, killTree: spec.killTree, inheritFds: spec.inheritFds }, `ManagedProcess spec of ${spec.name}`);
    this.readiness = validateReadiness(spec.readiness ?? 'spawn');
    this.readyTimeoutMs = spec.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.stopTimeoutMs = spec.stopTimeoutMs ?? DEFAULT_GRACE_MS;
    this.policy = resolveRestartPolicy(spec.restart);
    this.name = spec.name;
    this.spec = { ...spec, args: [...(spec.args ?? [])], env: spec.env && { ...spec.env }, inheritFds: spec.inheritFds && [...spec.inheritFds] };
    this.backoff = new Backoff(this.policy.backoff);
    this.sm = new StateMachine('stopped', (t) => this.emitTransition(t), `managed process ${spec.name}`);
  }

  get state(): ProcessState {
    return this.sm.state;
  }

  get pid(): number | undefined {
    return this.handle?.pid;
  }

  /** Automatic restarts by the policy since the last start()/restart(). */
  get restarts(): number {
    return this.restartCount;
  }

  status(): ManagedProcessStatus {
    return {
      name: this.name,
      state: this.state,
      pid: this.pid,
      restarts: this.restartCount,
      startedAt: this.startedAt,
      lastExit: this.lastExit,
      nextRestartAt: this.nextRestartAt,
      reason: this.lastReason,
    };
  }

  /** Resolves once running (per readiness). From 'failed' it starts afresh. Rejects if this start fails or a later stop() overtakes it. */
  start(): Promise<void> {
    const generation = this.stopGeneration;
    return this.enqueue(async () => {
      if (generation !== this.stopGeneration) throw new CancelledError(`start() of ${this.name} was overtaken by a later stop()`);
      switch (this.state) {
        case 'running':
          return;
        case 'backoff':
          this.clearBackoffTimer();
          return this.attempt('start() during backoff');
        default:
          this.resetCounters();
          return this.attempt(this.state === 'failed' ? 'start() after failure' : 'start()');
      }
    });
  }

  /** SIGTERM, then SIGKILL after timeoutMs (default stopTimeoutMs). Cancels a pending restart or a start in progress. */
  stop(timeoutMs?: number): Promise<ExitStatus> {
    const grace = validateTimeout(timeoutMs ?? this.stopTimeoutMs, 'timeoutMs');
    this.stopGeneration++;
    this.startAbort?.abort(new CancelledError(`start of ${this.name} was cancelled by stop()`));
    return this.enqueue(async () => {
      this.clearBackoffTimer();
      switch (this.state) {
        case 'running':
          return this.stopChild(grace, 'stop()');
        case 'backoff':
          this.sm.to('stopped', 'stop() cancelled the pending restart');
          break;
        case 'failed':
          this.sm.to('stopped', 'stop()');
          break;
      }
      return this.lastExit ?? { ...NEVER_RAN };
    });
  }

  /** Stops the child if it runs, then starts it again (backoff and restart budget start afresh). */
  restart(): Promise<void> {
    const generation = this.stopGeneration;
    return this.enqueue(async () => {
      if (generation !== this.stopGeneration) throw new CancelledError(`restart() of ${this.name} was overtaken by a later stop()`);
      this.clearBackoffTimer();
      if (this.state === 'running') await this.stopChild(this.stopTimeoutMs, 'restart()');
      this.resetCounters();
      await this.attempt('restart()');
    });
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op);
    this.queue = run.catch(() => {});
    return run;
  }

  private emitTransition(t: Transition): void {
    this.lastReason = t.reason;
    if (t.to !== 'backoff') this.nextRestartAt = undefined;
    this.emit('state', t);
  }

  private resetCounters(): void {
    this.restartTimes = [];
    this.restartCount = 0;
    this.backoff.reset();
  }

  private clearBackoffTimer(): void {
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
  }

  private async stopChild(grace: number, why: string): Promise<ExitStatus> {
    const h = this.handle!;
    this.sm.to('stopping', why);
    const st = await shutdown(h, grace);
    this.handle = undefined;
    this.sm.to('stopped', `${why}: ${describeExit(st)}`);
    return st;
  }

  /** starting → running, or → backoff / failed / stopped when the child cannot be started or made ready. */
  private async attempt(why: string): Promise<void> {
    this.sm.to('starting', why);
    let h: ProcessHandle;
    const spawnedAt = Date.now();
    try {
      h = spawn(this.name, this.spec.command, this.spec.args, {
        env: this.spec.env,
        cwd: this.spec.cwd,
        stdio: this.spec.stdio,
        killTree: this.spec.killTree,
        inheritFds: this.spec.inheritFds,
      });
    } catch (err) {
      // A missing executable does not fix itself: no restart loop.
      this.sm.to('failed', (err as Error).message);
      throw err;
    }
    this.handle = h;
    this.startedAt = new Date(spawnedAt);
    void h.exit.then((st) => this.onExit(h, st));
    this.emit('spawn', h.pid);

    const abort = new AbortController();
    this.startAbort = abort;
    try {
      await this.waitReady(h, spawnedAt, abort.signal);
    } catch (err) {
      if (abort.signal.aborted) {
        this.sm.to('stopping', 'stop() during start');
        const st = await shutdown(h, this.stopTimeoutMs);
        this.handle = undefined;
        this.sm.to('stopped', `stop() during start: ${describeExit(st)}`);
        throw abort.signal.reason;
      }
      // Not ready in time (or it exited): make sure it is gone, then let the policy decide.
      const st = await shutdown(h, this.stopTimeoutMs);
      this.handle = undefined;
      this.afterExit(st, (err as Error).message.split('\n')[0]!);
      throw err;
    } finally {
      this.startAbort = undefined;
    }
    this.sm.to('running', readinessReason(this.readiness, h.pid));
    if (this.policy.minUptimeMs >= 0) {
      // Once it has stayed up minUptimeMs, the next crash starts the backoff from initialMs again.
      this.uptimeTimer = setTimeout(() => this.backoff.reset(), this.policy.minUptimeMs);
      this.uptimeTimer.unref();
    }
  }

  private async waitReady(h: ProcessHandle, spawnedAt: number, signal: AbortSignal): Promise<void> {
    const r = this.readiness;
    if (r === 'spawn') return;
    if (r === 'ready') return waitForReady(h, this.readyTimeoutMs, signal);
    const registry = await openRegistry(r.domain);
    try {
      await waitForRegistration(registry, r.registered, h, spawnedAt, this.readyTimeoutMs, signal);
    } finally {
      registry.close();
    }
  }

  private onExit(h: ProcessHandle, st: ExitStatus): void {
    if (h !== this.handle) return;
    this.lastExit = st;
    if (this.uptimeTimer) clearTimeout(this.uptimeTimer);
    this.uptimeTimer = undefined;
    // With killTree, what the leader left behind in its group goes with it (it is not ours to keep).
    if (this.spec.killTree) forceKill(h);
    this.emit('exit', st, h.pid);
    // In 'starting' and 'stopping' the operation in progress handles the exit.
    if (this.state !== 'running') return;
    this.handle = undefined;
    this.afterExit(st, `exited with ${describeExit(st)}`);
  }

  /** After an unplanned exit: backoff and a restart, or stopped/failed, as the policy says. */
  private afterExit(st: ExitStatus, why: string): void {
    const now = Date.now();
    const next = afterExit(this.policy, st, this.restartTimes, now, this.startedAt ? now - this.startedAt.getTime() : undefined, why);
    this.restartTimes = next.restartTimes;
    if (next.to !== 'backoff') {
      this.sm.to(next.to, next.reason);
      return;
    }
    const delay = this.backoff.next();
    this.nextRestartAt = new Date(now + delay);
    this.sm.to('backoff', `${why}; restarting in ${delay} ms`);
    this.nextRestartAt = new Date(now + delay);
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.enqueue(() => this.autoRestart()).catch(() => {
        // The failure is already recorded in the state and its reason.
      });
    }, delay);
  }

  private async autoRestart(): Promise<void> {
    if (this.state !== 'backoff') return;
    this.restartCount++;
    await this.attempt(`restart #${this.restartCount} after backoff`);
  }
}

function validateReadiness(r: unknown): Readiness {
  if (r === 'spawn' || r === 'ready') return r;
  if (typeof r === 'object' && r !== null && 'registered' in r) {
    const { registered, domain } = r as { registered: unknown; domain?: unknown };
    validateName(registered, 'readiness.registered');
    if (domain !== undefined) validateName(domain, 'readiness.domain');
    return { registered, domain: domain as string | undefined };
  }
  throw new InvalidArgumentError(`readiness must be 'spawn', 'ready' or { registered: name, domain? }, got ${describeValue(r)}`);
}

function readinessReason(r: Readiness, pid: number): string {
  if (r === 'spawn') return `spawned (pid ${pid})`;
  if (r === 'ready') return `wrote READY (pid ${pid})`;
  return `registered ${r.registered} (pid ${pid})`;
}

async function openRegistry(domain: string | undefined): Promise<RegistryView & { close(): void }> {
  // Loaded on demand: only 'registered' readiness needs the registry.
  const mod = (await import(REGISTRY_MODULE)) as { ServiceRegistry: new (domain?: string) => RegistryView & { close(): void } };
  return new mod.ServiceRegistry(domain);
}
