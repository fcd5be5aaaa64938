import { EventEmitter } from 'node:events';
import type { ExitStatus, ManagedProcess } from '@libipc/process';
import type { Identity } from './adoption.js';
import type { LogPipe } from './log-pipe.js';
import type { ResolvedSpec, ServiceSpec } from './spec.js';
import { type ServiceState, ServiceStateMachine, type StateChange } from './states.js';

/** What caused a restart: a crash, a request (restart()), a trigger of the spec (maxMemory, cronRestart, watch) or a reload. */
export type RestartTrigger = 'crash' | 'manual' | 'memory' | 'cron' | 'watch' | 'reload';

/** How a service ended its last run, and when. */
export type LastExit = ExitStatus & { time: Date };

export interface ServiceStatus {
  /** The running name: the spec's name, or name.N for an instance. */
  name: string;
  /** The spec's name. */
  service: string;
  /** Instance number (0 for a spec without instances). */
  instance: number;
  state: ServiceState;
  /** What was asked for: 'running' (start) or 'stopped' (stop). */
  desired: 'running' | 'stopped';
  pid?: number;
  /** The process's start time in clock ticks since boot: with pid, its identity. */
  startTime?: bigint;
  /** When the current process started. */
  startedAt?: Date;
  restarts: number;
  restartLimit?: number;
  /** Unplanned restarts counted against restartLimit. */
  contractRestarts: number;
  lastExit?: LastExit;
  /** The last restart: what caused it, why, and when. */
  lastRestart?: { trigger: RestartTrigger; reason: string; time: Date };
  /** How long the current process has been running (0 unless running). */
  uptimeMs: number;
  /** Why it is in its state: why it failed, what it waits for, … */
  reason?: string;
  dependsOn: string[];
  /** True when its process was started by an earlier manager and adopted by this one. */
  adopted: boolean;
}

export interface Waiter {
  kind: 'running' | 'stopped';
  /** For restart(): only a process newer than this generation counts. */
  afterGeneration?: number;
  resolve(): void;
  reject(err: unknown): void;
}

/** Why a service that was running will be started again: a crash (counted against its contract) or a request. */
export type RestartCause = 'crash' | 'manual';

/** One running name of the manager and everything it knows about it (internal). */
export class Unit {
  readonly sm: ServiceStateMachine;
  spec: ResolvedSpec;
  raw: ServiceSpec;
  desired: 'running' | 'stopped' = 'stopped';
  /** desired as last asked by the user (shutdown() stops everything without changing it in the store). */
  savedDesired: 'running' | 'stopped' = 'stopped';
  reason: string | undefined;
  pid: number | undefined;
  startTime: bigint | undefined;
  startedAt: number | undefined;
  generation = 0;
  restarts = 0;
  contractRestarts = 0;
  lastExit: LastExit | undefined;
  restartCause: RestartCause | undefined;
  /** What the pending restart follows (a dependency's name, 'restart()'), for its history event. */
  restartNote: string | undefined;
  /** restart() asked: stop (dependents first), then start again. */
  bounce = false;
  /** A trigger (maxMemory, cronRestart, watch) asked for the pending restart, and why. */
  restartTrigger: { trigger: RestartTrigger; reason: string } | undefined;
  lastRestart: { trigger: RestartTrigger; reason: string; time: Date } | undefined;
  mp: ManagedProcess | undefined;
  /** What u.mp was built from; `fds`: its listening sockets' fds, joined. */
  mpKey: { spec: ServiceSpec; env: Record<string, string>; fds: string } | undefined;
  adopted: { id: Identity; abort: AbortController } | undefined;
  /** Restart timer after an adopted process exited (a ManagedProcess keeps its own otherwise). */
  backoffTimer: NodeJS.Timeout | undefined;
  /** A start or stop of ours is in flight. */
  starting = false;
  stopping = false;
  /** Grace for the next stop (stop(name, timeoutMs)). */
  stopGrace: number | undefined;
  stopReason: string | undefined;
  /** We cancelled the ManagedProcess's pending restart because the restart contract is used up. */
  failing = false;
  probe: Promise<void> | undefined;
  probeAbort: AbortController | undefined;
  removing = false;
  waiters: Waiter[] = [];
  logs: { stdout: LogPipe; stderr: LogPipe } | undefined;
  private lineEvents: EventEmitter | undefined;

  constructor(
    readonly name: string,
    readonly service: string,
    readonly index: number,
    raw: ServiceSpec,
    spec: ResolvedSpec,
    initial: ServiceState,
    onChange: (c: StateChange) => void,
  ) {
    this.raw = raw;
    this.spec = spec;
    this.sm = new ServiceStateMachine(name, initial, onChange);
  }

  /** Every log line of this unit, across restarts ('line', 'end'); made when first asked for. */
  get logEvents(): EventEmitter {
    if (!this.lineEvents) {
      this.lineEvents = new EventEmitter();
      this.lineEvents.setMaxListeners(0);
    }
    return this.lineEvents;
  }

  get hasLogListeners(): boolean {
    return this.lineEvents !== undefined && this.lineEvents.listenerCount('line') > 0;
  }

  get state(): ServiceState {
    return this.sm.state;
  }

  status(dependsOn: string[]): ServiceStatus {
    const running = this.state === 'running' && this.startedAt !== undefined;
    const s: ServiceStatus = {
      name: this.name,
      service: this.service,
      instance: this.index,
      state: this.state,
      desired: this.desired,
      restarts: this.restarts,
      contractRestarts: this.contractRestarts,
      uptimeMs: running ? Math.max(0, Date.now() - this.startedAt!) : 0,
      dependsOn,
      adopted: this.adopted !== undefined,
    };
    if (this.pid !== undefined) s.pid = this.pid;
    if (this.startTime !== undefined) s.startTime = this.startTime;
    if (this.startedAt !== undefined && this.pid !== undefined) s.startedAt = new Date(this.startedAt);
    if (this.spec.restartLimit !== undefined) s.restartLimit = this.spec.restartLimit;
    if (this.lastExit) s.lastExit = { ...this.lastExit };
    if (this.lastRestart) s.lastRestart = { ...this.lastRestart };
    if (this.reason !== undefined) s.reason = this.reason;
    return s;
  }
}
