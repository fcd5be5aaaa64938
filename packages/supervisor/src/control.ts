import type { Announcer } from './announcer.js';
import { Executor } from './executor.js';
import type { ListenSockets } from './listen-sockets.js';
import type { Persistence } from './persistence.js';
import { type Action, type World, planner, verdict } from './planner.js';
import { type Registry, busy } from './registry.js';
import { type ServiceState, type StateChange, hasProcess } from './states.js';
import type { RestartTrigger, Unit, Waiter } from './unit.js';

const MAX_PARALLEL_STARTS = 32;

/**
 * The control loop. Requests only set desired states and wait; after every change the planner decides each
 * unit's next action and the executor carries it out; a unit's state decides its waiters.
 */
export class Control {
  closed = false;
  shuttingDown = false;
  /** Called after every pass of the loop (the restart triggers follow what is wanted running). */
  afterPass: (() => void) | undefined;
  /** Told of every state change after the books (the reloader: an instance stopped under a replacement). */
  afterChange: ((u: Unit, c: StateChange) => void) | undefined;
  readonly exec: Executor;
  private readonly world: World;
  private evalScheduled = false;
  private flushedThisPass = false;

  constructor(
    private readonly reg: Registry,
    private readonly books: Persistence,
    private readonly out: Announcer,
    env: () => Record<string, string>,
    sockets: ListenSockets,
  ) {
    this.world = reg.world(() => this.shuttingDown);
    this.exec = new Executor(this, books, out, env, sockets);
  }

  // ---- states ----

  /** Moves `u` to `state` (or, already there, records the new reason). */
  to(u: Unit, state: ServiceState, reason: string): void {
    if (u.state === state) {
      u.reason = reason;
      this.books.persist(u);
      return;
    }
    u.sm.to(state, reason);
  }

  onStateChange(u: Unit, c: StateChange): void {
    u.reason = c.reason;
    if (c.to === 'running' && !u.adopted) u.startedAt ??= Date.now();
    this.books.persist(u);
    this.out.emit('state', c);
    this.afterChange?.(u, c);
    this.releaseSocketsIfIdle(u.service);
    this.settle(u);
    this.schedule();
  }

  /** A service's listening sockets close once none of its instances runs or should (a restart keeps them). */
  releaseSocketsIfIdle(service: string): void {
    const units = this.reg.unitsOf.get(service) ?? [];
    if (units.every((x) => !busy(x) && x.desired !== 'running')) this.exec.sockets.release(service);
  }

  setDesired(u: Unit, d: 'running' | 'stopped'): void {
    u.desired = d;
    if (!this.shuttingDown) u.savedDesired = d;
    this.books.persist(u);
  }

  // ---- requests: they set desired states and wait ----

  requestStart(targets: Unit[]): Promise<void> {
    const services = new Set(targets.map((u) => u.service));
    const closure = new Set<Unit>(targets);
    for (const u of this.reg.closureUnits(services, this.reg.graph.dependencyClosure(services))) closure.add(u);
    for (const u of closure) {
      const wasStopped = u.desired === 'stopped';
      this.setDesired(u, 'running');
      // An explicit start is a new life: failure forgotten, contract counted afresh.
      if (u.state === 'failed' || u.state === 'exited') {
        u.restarts = 0;
        u.contractRestarts = 0;
        u.restartCause = undefined;
        this.to(u, 'stopped', 'start()');
      } else if (u.state === 'stopped' && !u.starting) {
        if (wasStopped) {
          u.restarts = 0;
          u.contractRestarts = 0;
        }
        u.restartCause = undefined;
      }
    }
    // Dependents waiting for these after a crash come back because of this start, not of the crash.
    for (const s of this.reg.graph.dependentClosure(services)) {
      for (const u of this.reg.unitsOf.get(s)!) if ((u.state === 'stopped' || u.state === 'stopping') && u.restartCause === 'crash') u.restartCause = 'manual';
    }
    const waits = [...closure].map((u) => this.waitFor(u, 'running'));
    this.schedule();
    return Promise.all(waits).then(() => undefined);
  }

  requestStop(targets: Unit[], grace: number | undefined): Promise<void> {
    // The named units, and every unit of every service that depends on theirs (stop('w.1') keeps w.0).
    const closure = new Set<Unit>(targets);
    const services = new Set(targets.map((u) => u.service));
    for (const u of this.reg.closureUnits(services, this.reg.graph.dependentClosure(services))) closure.add(u);
    for (const u of closure) {
      this.setDesired(u, 'stopped');
      u.bounce = false;
      u.restartTrigger = undefined;
      if (grace !== undefined) u.stopGrace = grace;
    }
    const waits = [...closure].map((u) => this.waitFor(u, 'stopped'));
    this.schedule();
    return Promise.all(waits).then(() => undefined);
  }

  /** restart(): each target stopped (dependents first) and started again; `trigger` says what asked (default: a manual restart). */
  requestRestart(targets: Unit[], trigger?: { trigger: RestartTrigger; reason: string }): Promise<void> {
    const waits: Promise<void>[] = [];
    const services = new Set(targets.map((u) => u.service));
    for (const u of this.reg.closureUnits(services, this.reg.graph.dependencyClosure(services))) if (u.desired !== 'running') this.setDesired(u, 'running');
    for (const u of targets) {
      this.setDesired(u, 'running');
      u.restartTrigger = trigger;
      if (hasProcess(u.state) || u.starting) {
        u.bounce = true;
        waits.push(this.waitFor(u, 'running', u.generation));
      } else {
        if (u.state === 'failed' || u.state === 'exited') {
          u.restarts = 0;
          u.contractRestarts = 0;
          this.to(u, 'stopped', 'restart()');
        }
        u.restartCause = 'manual';
        waits.push(this.waitFor(u, 'running'));
      }
    }
    this.schedule();
    return Promise.all(waits).then(() => undefined);
  }

  /** An instance no longer in its spec: stopped, then dropped (until then the loop still drives it). */
  retire(u: Unit): void {
    this.setDesired(u, 'stopped');
    void this.waitFor(u, 'stopped').then(
      () => this.reg.units.get(u.name) === u && this.reg.dropUnit(u),
      () => {},
    );
  }

  waitFor(u: Unit, kind: 'running' | 'stopped', afterGeneration?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      u.waiters.push({ kind, afterGeneration, resolve, reject });
      this.settle(u);
    });
  }

  /** Resolves or rejects the unit's waiters that its state now decides. */
  settle(u: Unit): void {
    if (u.waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of u.waiters) {
      const v = verdict(this.world, u, w);
      if (v === undefined) keep.push(w);
      else if (v === true) w.resolve();
      else w.reject(v);
    }
    u.waiters = keep;
  }

  // ---- the loop ----

  schedule(): void {
    if (this.evalScheduled || this.closed || this.out.deferring) return;
    this.evalScheduled = true;
    queueMicrotask(() => {
      this.evalScheduled = false;
      try {
        this.evaluate();
      } catch (err) {
        this.out.warn(err);
      }
    });
  }

  /** Applies the rule to every unit (see planner.ts), one after another: each action is carried out before the next unit is decided. */
  evaluate(): void {
    this.flushedThisPass = false;
    const next = planner(this.world);
    for (const u of [...this.reg.units.values()]) {
      if (u.removing) continue;
      const a = next(u);
      if (a) this.act(u, a);
    }
    for (const u of [...this.reg.units.values()]) this.settle(u);
    this.afterPass?.();
  }

  private act(u: Unit, a: Action): void {
    switch (a.kind) {
      case 'start':
        if (this.exec.startsInFlight >= MAX_PARALLEL_STARTS) return;
        // What should run is on disk before anything is spawned: a manager killed right after the spawn
        // leaves a store from which the next one adopts the process rather than starting another.
        if (this.books.store && !this.flushedThisPass) {
          this.flushedThisPass = true;
          this.books.safe((s) => s.flush?.());
        }
        void this.exec.start(u);
        return;
      case 'stop':
        if (a.note !== undefined) u.restartNote = a.note;
        void this.exec.stop(u, a.reason, a.cause);
        return;
      case 'cancel-backoff':
        void this.exec.cancelBackoff(u, a.reason);
        return;
      case 'clear':
        this.to(u, 'stopped', a.reason);
        return;
      case 'wait':
        u.reason = a.reason;
        this.books.persist(u);
        return;
    }
  }
}
