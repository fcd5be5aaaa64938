import { EventEmitter } from 'node:events';
import { existsSync, rmdirSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { DEFAULT_RESTART_POLICY, type ExitStatus, ManagedProcess } from '@libipc/process';
import {
  ClosedError,
  CycleError,
  LibipcError,
  SystemError,
  ExistsError,
  ExitedEarlyError,
  IllegalStateError,
  InvalidArgumentError,
  MAX_TIMER_MS,
  NotFoundError,
  describeValue,
  option,
  parseOptions,
  selfIdentity,
  validateTimeout,
  watchExit,
} from '@libipc/shm';
import { z } from 'zod';
import { type Identity, alive, dying, exitOfGone, findOrphans, identityOf, signal, startedAtMs, stopAdopted } from './adoption.js';
import { DependencyGraph } from './dependency-graph.js';
import type { HistoryEvent, HistoryEventType, HistorySink } from './history.js';
import { SinkQueue, type SinkTrouble } from './history-queue.js';
import { JsonFileStore } from './json-store.js';
import { RotatingLogFile, makeDir } from './log-file.js';
import { LogPipe } from './log-pipe.js';
import { type LineSource, LogReader, lastLines, logPaths, mergeByTime } from './logs.js';
import { namePattern } from './pattern.js';
import { type Action, CancelledError, type World, afterAdoptedExit, limitReached, planner, verdict as verdictOf } from './planner.js';
import { Reconciler, planStoreChanges } from './reconciler.js';
import { launchSpec } from './launch.js';
import { describeReadiness, needsProbe, probe } from './readiness.js';
import { type FileLogs, type ResolvedSpec, type ServiceSpec, instanceNames, resolveSpec, validateSpec } from './spec.js';
import { type ServiceState, type StateChange, hasProcess } from './states.js';
import type { Store, StoreSnapshot, StoredInstance } from './store.js';
import { type RestartCause, type ServiceStatus, Unit, type Waiter } from './unit.js';

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

const MAX_PARALLEL_STARTS = 32;
export const DEFAULT_RECONCILE_MS = 1000;
const DEFAULT_HISTORY_QUEUE = 1000;
const DEFAULT_SINK_TIMEOUT_MS = 5000;
const SHUTDOWN_SINK_DRAIN_MS = 2000;

// Stores held by a live Manager of this process (another process's hold is in the store's owner record).
const heldStores = new WeakSet<Store>();
const heldPaths = new Set<string>();

const envSchema = z.record(z.string().regex(/^[^=\0]+$/), z.string()).describe('an object of strings');

type SinkLike = HistorySink | ((event: HistoryEvent) => void | Promise<void>);

function asSink(v: unknown): SinkLike | undefined {
  if (typeof v === 'function') return v as SinkLike;
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.write === 'function') return v as HistorySink;
  // Sinks written against other supervisors' vocabulary.
  for (const alias of ['record', 'send', 'append', 'log', 'handle', 'onEvent']) {
    const fn = o[alias];
    if (typeof fn === 'function') return { write: (e: HistoryEvent) => (fn as (e: HistoryEvent) => void | Promise<void>).call(v, e) };
  }
  return undefined;
}

function isStore(v: unknown): v is Store {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return ['load', 'putService', 'deleteService', 'putInstance', 'deleteInstance', 'setOwner', 'close'].every((k) => typeof s[k] === 'function');
}

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
 * ({ changes }); 'warning' (an Error: something went wrong that the manager worked around).
 */
export class Manager extends EventEmitter {
  /** Resolves once what the store says should run runs (or failed to start); at once without a store. */
  readonly loaded: Promise<void>;
  private readonly specs = new Map<string, ServiceSpec>();
  private readonly units = new Map<string, Unit>();
  private readonly unitsOf = new Map<string, Unit[]>();
  private readonly graph = new DependencyGraph();
  private globalEnv: Record<string, string>;
  private readonly store: Store | undefined;
  private readonly ownsStore: boolean;
  private readonly storeKey: string | undefined;
  private readonly sinkQueues: SinkQueue[];
  private readonly reconciler: Reconciler;
  /** What the planner sees. */
  private readonly world: World = {
    unitsOf: (s) => this.unitsOf.get(s) ?? [],
    dependenciesOf: (s) => this.graph.dependenciesView(s),
    dependentsOf: (s) => this.graph.dependentsView(s),
    dependencyClosure: (s) => this.graph.dependencyClosure(s),
    isShuttingDown: () => this.shuttingDown,
  };
  private evalScheduled = false;
  private startsInFlight = 0;
  private flushedThisPass = false;
  private shuttingDown = false;
  private shutdownPromise: Promise<void> | undefined;
  private closed = false;
  /** Events raised inside the constructor (adoptions), replayed on the next tick so listeners added after `new` see them. */
  private deferred: Array<[string, unknown[]]> | undefined = [];

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
    const capacity = o.historyQueueSize ?? DEFAULT_HISTORY_QUEUE;
    const sinkTimeout = o.sinkTimeoutMs ?? DEFAULT_SINK_TIMEOUT_MS;
    this.sinkQueues = (o.sinks ?? []).map((s, i) => new SinkQueue(i, asSink(s)!, capacity, sinkTimeout, (kind, t) => this.onSinkTrouble(kind, t)));
    this.reconciler = new Reconciler(() => this.reconcileOnce());

    if (typeof o.store === 'string') {
      this.storeKey = resolvePath(o.store);
      if (heldPaths.has(this.storeKey)) throw new ExistsError(`store ${this.storeKey} is held by another Manager of this process; shut it down first`);
      this.store = new JsonFileStore(this.storeKey);
      this.ownsStore = true;
    } else {
      this.store = o.store;
      this.ownsStore = false;
      if (this.store && heldStores.has(this.store)) throw new ExistsError('this store is held by another Manager of this process; shut it down first');
    }
    let toStart: Unit[] = [];
    if (this.store) {
      try {
        toStart = this.restore(this.store);
      } catch (err) {
        if (this.ownsStore) this.store.close();
        throw err;
      }
      if (this.storeKey) heldPaths.add(this.storeKey);
      else heldStores.add(this.store);
    }
    this.loaded = Promise.allSettled(toStart.map((u) => this.waitFor(u, 'running'))).then(() => undefined);
    if (o.reconcileMs !== undefined) this.startReconciler(o.reconcileMs);
    const deferred = this.deferred!;
    // A microtask, not nextTick: inside async code nextTick would run after the caller's next await.
    queueMicrotask(() => {
      this.deferred = undefined;
      for (const [event, args] of deferred) this.emitSafe(event, ...args);
      this.schedule();
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
      if (typeof spec === 'string') return this.requestStart(this.unitsNamed(spec));
      const s = validateSpec(spec);
      this.define(s);
      return this.requestStart(this.unitsOf.get(s.name)!);
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
      return this.requestStop(this.unitsNamed(name), grace);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Stops every service whose name matches the glob (and what depends on them), dependents first. */
  stopAll(pattern: string, timeoutMs?: number): Promise<void> {
    try {
      this.assertOpen();
      const grace = timeoutMs === undefined ? undefined : validateTimeout(timeoutMs, 'timeoutMs');
      const match = namePattern(pattern);
      return this.requestStop(
        [...this.units.values()].filter((u) => match(u.name, this.instanceOf(u))),
        grace,
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Stops the service (its dependents first) and starts it again, then its dependents. */
  restart(name: string): Promise<void> {
    try {
      this.assertOpen();
      return this.requestRestart(this.unitsNamed(name));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Stops a service and forgets it (and removes it from the store). Refused while another service depends on it. */
  async remove(name: string, timeoutMs?: number): Promise<void> {
    this.assertOpen();
    if (!this.specs.has(name)) throw new NotFoundError(`no service named '${name}'${this.units.has(name) ? ' (an instance: remove its service)' : ''}`);
    const dependents = this.graph.dependentsOf(name);
    if (dependents.length > 0) {
      throw new IllegalStateError(`cannot remove '${name}': ${dependents.join(', ')} depend(s) on it; remove those dependencies first`);
    }
    const units = this.unitsOf.get(name)!;
    await this.requestStop(units, timeoutMs === undefined ? undefined : validateTimeout(timeoutMs, 'timeoutMs'));
    this.forget(name);
  }

  status(name: string): ServiceStatus {
    if (typeof name !== 'string') throw new InvalidArgumentError(`name must be a string, got ${describeValue(name)}`);
    const u = this.units.get(name);
    if (u) return this.statusOf(u);
    if (this.specs.has(name)) {
      throw new NotFoundError(`'${name}' runs as instances ${this.unitsOf.get(name)!.map((x) => x.name).join(', ')}; use statusAll('${name}')`);
    }
    throw new NotFoundError(`no service named '${name}'`);
  }

  /** Statuses of every service whose name matches the glob (default all), by name. */
  statusAll(pattern = '*'): ServiceStatus[] {
    const match = namePattern(pattern);
    return [...this.units.values()]
      .filter((u) => match(u.name, this.instanceOf(u)))
      .sort((a, b) => a.service.localeCompare(b.service) || a.index - b.index)
      .map((u) => this.statusOf(u));
  }

  /** How many services matching the glob (default all) have a process (starting, running or stopping). */
  count(pattern = '*'): number {
    const match = namePattern(pattern);
    let n = 0;
    for (const u of this.units.values()) if (hasProcess(u.state) && match(u.name, this.instanceOf(u))) n++;
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
    this.requireService(name);
    this.requireService(dependsOn);
    this.graph.addEdge(name, dependsOn);
    const spec = this.specs.get(name)!;
    const deps = [...(spec.dependsOn ?? [])];
    if (!deps.includes(dependsOn)) deps.push(dependsOn);
    this.updateSpec({ ...spec, dependsOn: deps });
    // A running service must have its dependencies running: start the new one if needed.
    const units = this.unitsOf.get(name)!;
    if (units.some((u) => u.desired === 'running')) {
      for (const s of this.graph.dependencyClosure([dependsOn])) for (const u of this.unitsOf.get(s)!) this.setDesired(u, 'running');
    }
    this.schedule();
  }

  removeDependency(name: string, dependsOn: string): void {
    this.assertOpen();
    this.requireService(name);
    this.requireService(dependsOn);
    this.graph.removeEdge(name, dependsOn);
    const spec = this.specs.get(name)!;
    const deps = (spec.dependsOn ?? []).filter((d) => d !== dependsOn);
    const next: ServiceSpec = { ...spec, dependsOn: deps };
    if (deps.length === 0) delete next.dependsOn;
    this.updateSpec(next);
    this.schedule();
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
    const u = this.units.get(name);
    if (!u) throw new NotFoundError(`no service named '${name}'${this.specs.has(name) ? ' (it runs as instances: ask for one of them)' : ''}`);
    const l = u.spec.logs;
    if (typeof l === 'string') {
      throw new IllegalStateError(`${name} does not log to files (logs: '${l}'); give its spec logs: { dir } to read its output back`);
    }
    const n = o.lines ?? 100;
    const stream = o.stream ?? 'both';
    const p = logPaths(l.dir, name);
    const snapshot = () => {
      // What is still in the pipe belongs before anything read now.
      u.logs?.stdout.drain(false);
      u.logs?.stderr.drain(false);
      if (stream !== 'both') return lastLines(p.file[stream], l.keep, n);
      return mergeByTime(lastLines(p.file.stdout, l.keep, n), lastLines(p.file.stderr, l.keep, n), n);
    };
    let live: LineSource | undefined;
    if (o.follow) {
      live = (onLine, onEnd) => {
        if (this.closed || u.removing) {
          queueMicrotask(onEnd);
          return () => {};
        }
        const line = (s: string, which: string) => (stream === 'both' || stream === which) && onLine(s);
        u.logEvents.on('line', line);
        u.logEvents.on('end', onEnd);
        return () => {
          u.logEvents.off('line', line);
          u.logEvents.off('end', onEnd);
        };
      };
    }
    return new LogReader(snapshot, live);
  }

  // ---- definitions ----

  private assertOpen(): void {
    if (this.closed || this.shuttingDown) throw new ClosedError('this Manager was shut down; create a new one');
  }

  private requireService(name: unknown): void {
    if (typeof name !== 'string') throw new InvalidArgumentError(`a service name must be a string, got ${describeValue(name)}`);
    if (!this.specs.has(name)) {
      throw new NotFoundError(`no service named '${name}'${this.units.has(name) ? ' (that is an instance; dependencies are between services)' : ''}`);
    }
  }

  /** The units a name means: one unit, or every instance of a spec. */
  private unitsNamed(name: unknown): Unit[] {
    if (typeof name !== 'string') throw new InvalidArgumentError(`name must be a string, got ${describeValue(name)}`);
    const u = this.units.get(name);
    if (u) return [u];
    const of = this.unitsOf.get(name);
    if (of) return [...of];
    throw new NotFoundError(`no service named '${name}'`);
  }

  private instanceOf(u: Unit): string | undefined {
    return u.raw.instances === undefined ? undefined : u.service;
  }

  /** Adds or replaces a spec (not started here). */
  private define(spec: ServiceSpec): void {
    const names = instanceNames(spec);
    for (const n of names) {
      const other = this.units.get(n);
      if (other && other.service !== spec.name) throw new ExistsError(`'${n}' is already the name of ${other.service === other.name ? 'a service' : `an instance of ${other.service}`}; pick another name`);
    }
    if (this.units.has(spec.name) && this.units.get(spec.name)!.service !== spec.name) {
      throw new ExistsError(`'${spec.name}' is already the name of an instance of ${this.units.get(spec.name)!.service}; pick another name`);
    }
    const existing = this.unitsOf.get(spec.name);
    const busy = existing?.find((u) => hasProcess(u.state) || u.state === 'backoff' || u.starting || u.stopping);
    if (busy) {
      throw new ExistsError(`a service named '${spec.name}' is already ${busy.state}; stop it first, or restart('${spec.name}') to restart it`);
    }
    for (const d of spec.dependsOn ?? []) {
      if (!this.specs.has(d)) {
        if (d === spec.name) throw new CycleError([d, d]);
        throw new NotFoundError(`'${spec.name}' depends on '${d}', which this manager does not know; start '${d}' first or remove it from dependsOn`);
      }
    }
    const isNew = !this.graph.has(spec.name);
    this.graph.addNode(spec.name);
    try {
      this.graph.setDependencies(spec.name, spec.dependsOn ?? []);
    } catch (err) {
      if (isNew) this.graph.removeNode(spec.name);
      throw err;
    }
    this.specs.set(spec.name, spec);
    this.syncUnits(spec);
    this.store && this.safeStore((s) => s.putService({ spec }));
  }

  /** Makes the units of a spec match its instances (new ones stopped; extra ones, which are stopped, removed). */
  private syncUnits(spec: ServiceSpec, stored?: Map<string, StoredInstance>): void {
    const resolved = resolveSpec(spec);
    const names = instanceNames(spec);
    const old = this.unitsOf.get(spec.name) ?? [];
    const next: Unit[] = [];
    names.forEach((n, i) => {
      let u = old.find((x) => x.name === n);
      if (u) {
        u.raw = spec;
        u.spec = resolved;
      } else {
        const rec = stored?.get(n);
        const initial: ServiceState = rec && (rec.state === 'failed' || rec.state === 'exited') ? rec.state : 'stopped';
        u = new Unit(n, spec.name, i, spec, resolved, initial, (c) => this.onStateChange(u!, c));
        if (rec) {
          u.desired = u.savedDesired = rec.desired;
          u.restarts = rec.restarts;
          u.contractRestarts = rec.contractRestarts;
          u.reason = rec.reason;
        }
        this.units.set(n, u);
      }
      next.push(u);
    });
    for (const u of old) {
      if (names.includes(u.name)) continue;
      if (hasProcess(u.state) || u.state === 'backoff' || u.starting || u.stopping) this.retire(u);
      else this.dropUnit(u);
    }
    this.unitsOf.set(spec.name, next);
  }

  private updateSpec(spec: ServiceSpec): void {
    this.specs.set(spec.name, spec);
    const resolved = resolveSpec(spec);
    for (const u of this.unitsOf.get(spec.name) ?? []) {
      u.raw = spec;
      u.spec = resolved;
    }
    this.store && this.safeStore((s) => s.putService({ spec }));
  }

  /** An instance no longer in its spec: stopped, then dropped (until then evaluate still drives it). */
  private retire(u: Unit): void {
    this.setDesired(u, 'stopped');
    void this.waitFor(u, 'stopped').then(
      () => this.units.get(u.name) === u && this.dropUnit(u),
      () => {},
    );
  }

  private dropUnit(u: Unit): void {
    u.removing = true;
    for (const w of u.waiters.splice(0)) w.reject(new CancelledError(`${u.name} was removed`));
    this.closeLogs(u, true);
    u.mp?.removeAllListeners();
    u.adopted?.abort.abort();
    this.units.delete(u.name);
    this.store && this.safeStore((s) => s.deleteInstance(u.name));
  }

  private forget(service: string): void {
    for (const u of this.unitsOf.get(service) ?? []) this.dropUnit(u);
    this.unitsOf.delete(service);
    this.specs.delete(service);
    this.graph.removeNode(service);
    this.store && this.safeStore((s) => s.deleteService(service));
  }

  // ---- requests: they set desired states and wait ----

  private setDesired(u: Unit, d: 'running' | 'stopped'): void {
    u.desired = d;
    if (!this.shuttingDown) u.savedDesired = d;
    this.persist(u);
  }

  private requestStart(targets: Unit[]): Promise<void> {
    const services = new Set(targets.map((u) => u.service));
    const closure = new Set<Unit>(targets);
    for (const s of this.graph.dependencyClosure(services)) {
      if (services.has(s)) continue;
      for (const u of this.unitsOf.get(s)!) closure.add(u);
    }
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
    for (const s of this.graph.dependentClosure(services)) {
      for (const u of this.unitsOf.get(s)!) if ((u.state === 'stopped' || u.state === 'stopping') && u.restartCause === 'crash') u.restartCause = 'manual';
    }
    const waits = [...closure].map((u) => this.waitFor(u, 'running'));
    this.schedule();
    return Promise.all(waits).then(() => undefined);
  }

  private requestStop(targets: Unit[], grace: number | undefined): Promise<void> {
    // The named units, and every unit of every service that depends on theirs (stop('w.1') keeps w.0).
    const closure = new Set<Unit>(targets);
    const services = new Set(targets.map((u) => u.service));
    for (const s of this.graph.dependentClosure(services)) {
      if (services.has(s)) continue;
      for (const u of this.unitsOf.get(s)!) closure.add(u);
    }
    for (const u of closure) {
      this.setDesired(u, 'stopped');
      u.bounce = false;
      if (grace !== undefined) u.stopGrace = grace;
    }
    const waits = [...closure].map((u) => this.waitFor(u, 'stopped'));
    this.schedule();
    return Promise.all(waits).then(() => undefined);
  }

  private requestRestart(targets: Unit[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const services = new Set(targets.map((u) => u.service));
    for (const s of this.graph.dependencyClosure(services)) {
      if (services.has(s)) continue;
      for (const u of this.unitsOf.get(s)!) if (u.desired !== 'running') this.setDesired(u, 'running');
    }
    for (const u of targets) {
      this.setDesired(u, 'running');
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

  private waitFor(u: Unit, kind: 'running' | 'stopped', afterGeneration?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      u.waiters.push({ kind, afterGeneration, resolve, reject });
      this.settle(u);
    });
  }

  /** Resolves or rejects the unit's waiters that its state now decides. */
  private settle(u: Unit): void {
    if (u.waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of u.waiters) {
      const verdict = verdictOf(this.world, u, w);
      if (verdict === undefined) keep.push(w);
      else if (verdict === true) w.resolve();
      else w.reject(verdict);
    }
    u.waiters = keep;
  }

  // ---- the control loop ----

  private schedule(): void {
    if (this.evalScheduled || this.closed || this.deferred) return;
    this.evalScheduled = true;
    queueMicrotask(() => {
      this.evalScheduled = false;
      try {
        this.evaluate();
      } catch (err) {
        this.warn(err);
      }
    });
  }

  /** Applies the rule to every unit (see the class comment), starting or stopping what it says. */
  private evaluate(): void {
    this.flushedThisPass = false;
    const next = planner(this.world);
    for (const u of [...this.units.values()]) {
      if (u.removing) continue;
      const a = next(u);
      if (a) this.act(u, a);
    }
    for (const u of [...this.units.values()]) this.settle(u);
  }

  /** Carries out what the planner decided for `u`. */
  private act(u: Unit, a: Action): void {
    switch (a.kind) {
      case 'start':
        if (this.startsInFlight >= MAX_PARALLEL_STARTS) return;
        // What should run is on disk before anything is spawned: a manager killed right after the spawn
        // leaves a store from which the next one adopts the process rather than starting another.
        if (this.store && !this.flushedThisPass) {
          this.flushedThisPass = true;
          this.safeStore((s) => s.flush?.());
        }
        void this.startAction(u);
        return;
      case 'stop':
        if (a.note !== undefined) u.restartNote = a.note;
        void this.stopAction(u, a.reason, a.cause);
        return;
      case 'cancel-backoff':
        void this.cancelBackoff(u, a.reason);
        return;
      case 'clear':
        this.to(u, 'stopped', a.reason);
        return;
      case 'wait':
        u.reason = a.reason;
        this.persist(u);
        return;
    }
  }

  // ---- actions ----

  private async startAction(u: Unit): Promise<void> {
    u.starting = true;
    this.startsInFlight++;
    try {
      if (typeof u.spec.logs === 'object' && !u.logs) {
        try {
          await this.openLogs(u, u.spec.logs);
        } catch (err) {
          // It would fail the same way at once again: failed, until start() after the folder is fixed.
          const e = err instanceof LibipcError ? err : systemError(err, `cannot set up the log files of ${u.name} in ${u.spec.logs.dir}`);
          if (u.state === 'stopped' && u.desired === 'running') {
            this.to(u, 'failed', e.message);
            this.history(u, 'failed', { reason: e.message, restarts: u.restarts });
          }
          throw e;
        }
      }
      // Asked otherwise meanwhile?
      if (u.desired !== 'running' || u.removing || this.closed || u.state !== 'stopped') return;
      const cause = u.restartCause;
      if (cause) {
        if (cause === 'crash' && limitReached(u.spec.restartLimit, u.contractRestarts)) {
          this.to(u, 'failed', `restart limit ${u.spec.restartLimit} reached (${u.contractRestarts} restart(s) after crashes); ${u.reason ?? ''}`.trim());
          this.history(u, 'failed', { restarts: u.restarts, reason: u.reason });
          return;
        }
        u.restarts++;
        if (cause === 'crash') u.contractRestarts++;
        u.restartCause = undefined;
        this.history(u, 'restart', { backoffMs: 0, restarts: u.restarts, reason: u.restartNote ? `after ${u.restartNote}` : u.reason });
        u.restartNote = undefined;
      }
      let mp: ManagedProcess;
      try {
        mp = this.processFor(u);
      } catch (err) {
        this.to(u, 'starting', 'start');
        this.to(u, 'failed', (err as Error).message);
        this.history(u, 'failed', { reason: (err as Error).message, restarts: u.restarts });
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
      this.settle(u);
      this.schedule();
    }
  }

  private async stopAction(u: Unit, reason: string, restartCause: RestartCause | undefined): Promise<void> {
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
        this.history(u, 'stop', { pid: id.pid, reason });
      } else if (u.mp) {
        await u.mp.stop(grace);
        // A ManagedProcess still spawning when asked reports through its state events; make sure we are stopped.
        if (u.state === 'starting' || u.state === 'running' || u.state === 'stopping') {
          if (u.state !== 'stopping') this.to(u, 'stopping', reason);
          this.to(u, 'stopped', reason);
        }
      }
    } catch (err) {
      this.warn(err);
    } finally {
      u.stopping = false;
      u.stopGrace = undefined;
      u.stopReason = undefined;
      if (u.state === 'stopped') {
        if (u.bounce) {
          u.bounce = false;
          u.restartCause = 'manual';
        } else if (u.desired !== 'running') {
          u.restartCause = undefined;
        }
      }
      this.settle(u);
      this.schedule();
    }
  }

  private async cancelBackoff(u: Unit, reason: string): Promise<void> {
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
      this.warn(err);
    } finally {
      u.stopping = false;
      u.stopReason = undefined;
      if (u.desired !== 'running') u.restartCause = undefined;
      this.settle(u);
      this.schedule();
    }
  }

  /** The unit's ManagedProcess, built anew when its spec or the environment changed. */
  private processFor(u: Unit): ManagedProcess {
    // Built (and the executable checked) at every start; the ManagedProcess itself is kept while nothing changed.
    const launch = launchSpec(u, this.globalEnv);
    // Same spec object and same global env object: same ManagedProcess (both are replaced, never mutated).
    const key = { spec: u.raw, env: this.globalEnv };
    if (u.mp && u.mpKey?.spec === key.spec && u.mpKey.env === key.env) return u.mp;
    u.mp?.removeAllListeners();
    const mp = new ManagedProcess(launch);
    mp.on('state', (t: { from: string; to: string; reason: string }) => this.onProcessState(u, mp, t));
    mp.on('spawn', (pid: number) => this.onSpawn(u, mp, pid));
    mp.on('exit', (st: ExitStatus, pid: number) => this.onExit(u, mp, st, pid));
    u.mp = mp;
    u.mpKey = key;
    u.failing = false;
    return mp;
  }

  // ---- what the ManagedProcess reports ----

  private onSpawn(u: Unit, mp: ManagedProcess, pid: number): void {
    if (u.mp !== mp) return;
    u.pid = pid;
    u.startTime = identityOf(pid)?.startTime;
    u.startedAt = Date.now();
    u.generation++;
    this.persist(u);
    this.history(u, 'start', { pid, startTime: u.startTime?.toString() });
  }

  private onExit(u: Unit, mp: ManagedProcess, st: ExitStatus, pid: number): void {
    if (u.mp !== mp) return;
    u.lastExit = { ...st, time: new Date() };
    if (u.pid === pid) {
      u.pid = undefined;
      u.startTime = undefined;
    }
    u.logs?.stdout.drain(true);
    u.logs?.stderr.drain(true);
    this.persist(u);
    this.history(u, 'exit', { pid, exitCode: st.exitCode, signal: st.signal });
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
          this.history(u, 'ready', { pid: u.pid, reason: describeReadiness(u.spec.readiness) });
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
          this.history(u, 'failed', { restarts: u.restarts, reason: why });
        } else {
          this.to(u, 'backoff', t.reason);
          // ManagedProcess says the delay in its reason ("…; restarting in 100 ms").
          const said = /restarting in (\d+) ms/.exec(t.reason);
          const next = mp.status().nextRestartAt;
          const backoffMs = said ? Number(said[1]) : next ? Math.max(0, next.getTime() - Date.now()) : undefined;
          this.history(u, 'restart', { backoffMs, restarts: u.restarts, reason: t.reason });
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
            this.history(u, 'stop', { reason: why });
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
          this.history(u, 'failed', { restarts: u.restarts, reason: t.reason });
        }
        break;
    }
    this.schedule();
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
        this.history(u, 'ready', { pid, reason: describeReadiness(r) });
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

  // ---- adoption ----

  private adopt(u: Unit, id: Identity, how: string): void {
    const ac = new AbortController();
    u.adopted = { id, abort: ac };
    u.pid = id.pid;
    u.startTime = id.startTime;
    u.startedAt = startedAtMs(id.startTime);
    u.generation++;
    if (typeof u.spec.logs === 'object') this.reattachLogs(u, u.spec.logs, id.pid);
    this.to(u, 'running', `adopted pid ${id.pid} (${how})`);
    this.history(u, 'adopt', { pid: id.pid, startTime: id.startTime.toString(), reason: how });
    // Not our child: its exit is seen through a pidfd.
    watchExit(id.pid, id.startTime, { signal: ac.signal, ref: false }).then(
      () => this.onAdoptedExit(u, id),
      () => {},
    );
  }

  private adoptedGone(u: Unit, id: Identity): ExitStatus {
    const st = exitOfGone(id);
    u.adopted?.abort.abort();
    u.adopted = undefined;
    u.pid = undefined;
    u.startTime = undefined;
    u.lastExit = { ...st, time: new Date() };
    u.logs?.stdout.drain(true);
    u.logs?.stderr.drain(true);
    this.history(u, 'exit', { pid: id.pid, exitCode: st.exitCode, signal: st.signal });
    return st;
  }

  /** An adopted process ended by itself: the spec's restart policy decides, as it would for our own child. */
  private onAdoptedExit(u: Unit, id: Identity): void {
    if (u.adopted?.id !== id || u.stopping || this.closed) return;
    const st = this.adoptedGone(u, id);
    const next = afterAdoptedExit(u.spec.restart ?? DEFAULT_RESTART_POLICY, st, u.spec.restartLimit, u.contractRestarts);
    if (next.to !== 'backoff') {
      this.to(u, next.to, next.reason);
      if (next.to === 'failed') this.history(u, 'failed', { restarts: u.restarts, reason: u.reason });
    } else {
      u.restartCause = 'crash';
      const delay = next.delayMs!;
      this.to(u, 'backoff', next.reason);
      this.history(u, 'restart', { backoffMs: delay, restarts: u.restarts, reason: u.reason });
      u.backoffTimer = setTimeout(() => {
        u.backoffTimer = undefined;
        if (u.state === 'backoff' && !u.stopping) this.to(u, 'stopped', 'backoff over: restarting');
      }, delay);
    }
    this.schedule();
  }

  /** Takes over what an earlier manager left in the store. Returns the units that should be started. */
  private restore(store: Store): Unit[] {
    const snap: StoreSnapshot = store.load();
    const me = selfIdentity();
    let oldOwner: Identity | undefined;
    if (snap.owner) {
      oldOwner = { pid: snap.owner.pid, startTime: BigInt(snap.owner.startTime) };
      const isMe = oldOwner.pid === me.pid && oldOwner.startTime === me.startTime;
      // A manager that was just sent SIGKILL still shows as alive for a moment: it counts as gone.
      if (!isMe && !dying(oldOwner)) {
        throw new ExistsError(`the store is held by a running manager (pid ${oldOwner.pid}); shut it down first, or use another store`);
      }
      if (isMe) oldOwner = undefined;
    }
    const specs = snap.services.map((s) => validateSpec(s.spec, 'stored ServiceSpec'));
    for (const s of specs) {
      if (this.specs.has(s.name)) throw new ExistsError(`the store holds two services named '${s.name}'`);
      this.specs.set(s.name, s);
      this.graph.addNode(s.name);
    }
    for (const s of specs) for (const d of s.dependsOn ?? []) this.graph.addEdgeUnchecked(s.name, d);
    const cycle = this.graph.findCycle();
    if (cycle) throw new CycleError(cycle, `the store holds a dependency cycle: ${cycle.join(' → ')}; remove one of these dependencies from the store`);
    const stored = new Map(snap.instances.map((i) => [i.name, i]));
    for (const s of specs) this.syncUnits(s, stored);
    store.setOwner({ pid: me.pid, startTime: String(me.startTime) });

    const adoptedPids = new Set<number>();
    for (const u of this.units.values()) {
      const rec = stored.get(u.name);
      if (rec?.pid === undefined || rec.startTime === undefined) continue;
      const id = { pid: rec.pid, startTime: BigInt(rec.startTime) };
      if (alive(id)) {
        this.adopt(u, id, 'recorded in the store');
        adoptedPids.add(id.pid);
      }
    }
    if (oldOwner && dying(oldOwner)) {
      // Children the old manager started but whose identity never reached the store.
      for (const o of findOrphans(oldOwner, adoptedPids)) {
        const spec = this.specs.get(o.service);
        const name = spec?.instances === undefined ? o.service : `${o.service}.${o.instanceId}`;
        const u = this.units.get(name);
        if (u && !u.adopted && u.service === o.service) this.adopt(u, o, 'found by its environment');
        else this.warn(new IllegalStateError(`pid ${o.pid} was started by the previous manager for '${name}', which is ${u ? 'already adopted' : 'not in the store'}; left alone`));
      }
    }
    const toStart: Unit[] = [];
    for (const u of this.units.values()) {
      const rec = stored.get(u.name);
      if (!u.adopted && rec) this.persist(u);
      if (u.desired === 'running' && !u.adopted && u.state === 'stopped') {
        u.reason = rec?.pid !== undefined ? `pid ${rec.pid} was gone when this manager started` : 'restored from the store';
        toStart.push(u);
      }
    }
    return toStart;
  }

  // ---- logs ----

  private async openLogs(u: Unit, l: FileLogs): Promise<void> {
    const p = logPaths(l.dir, u.name);
    makeDir(p.fifoDir);
    const [stdout, stderr] = await Promise.all([
      LogPipe.open(p.fifo.stdout, new RotatingLogFile(p.file.stdout, l.maxBytes, l.keep)),
      LogPipe.open(p.fifo.stderr, new RotatingLogFile(p.file.stderr, l.maxBytes, l.keep)),
    ]);
    if (u.logs || u.removing || this.closed) {
      stdout.close(!u.logs);
      stderr.close(!u.logs);
      return;
    }
    this.wireLogs(u, stdout, stderr);
  }

  private reattachLogs(u: Unit, l: FileLogs, pid: number): void {
    const p = logPaths(l.dir, u.name);
    try {
      const pipe = (stream: 'stdout' | 'stderr', fd: number) =>
        LogPipe.fromPath(existsSync(p.fifo[stream]) ? p.fifo[stream] : `/proc/${pid}/fd/${fd}`, p.fifo[stream], new RotatingLogFile(p.file[stream], l.maxBytes, l.keep));
      this.wireLogs(u, pipe('stdout', 1), pipe('stderr', 2));
    } catch (err) {
      this.warn(new IllegalStateError(`cannot re-attach the logs of ${u.name} (pid ${pid}): ${(err as Error).message}`));
    }
  }

  private wireLogs(u: Unit, stdout: LogPipe, stderr: LogPipe): void {
    u.logs = { stdout, stderr };
    stdout.on('line', (l: string) => u.hasLogListeners && u.logEvents.emit('line', l, 'stdout'));
    stderr.on('line', (l: string) => u.hasLogListeners && u.logEvents.emit('line', l, 'stderr'));
    for (const p of [stdout, stderr]) p.on('write-error', (err: unknown) => this.warn(err));
  }

  private closeLogs(u: Unit, unlink: boolean): void {
    if (u.logs) {
      u.logs.stdout.close(unlink);
      u.logs.stderr.close(unlink);
      if (unlink && typeof u.spec.logs === 'object') {
        try {
          rmdirSync(logPaths(u.spec.logs.dir, u.name).fifoDir);
        } catch {
          // other services' pipes are still there
        }
      }
      u.logs = undefined;
    }
    if (u.hasLogListeners) u.logEvents.emit('end');
  }

  // ---- reconciliation ----

  private reconcileOnce(): void {
    if (this.closed || this.shuttingDown) return;
    const changes: string[] = [];
    // Adopted processes that died without their pidfd telling us (the watch is event-driven; this is the back-up).
    for (const u of this.units.values()) {
      if (u.adopted && !u.stopping && !alive(u.adopted.id)) {
        changes.push(`${u.name}: pid ${u.adopted.id.pid} is gone`);
        this.onAdoptedExit(u, u.adopted.id);
      }
    }
    if (this.store?.changedExternally?.()) {
      try {
        changes.push(...this.applyStore(this.store.load()));
      } catch (err) {
        this.warn(err);
      }
    }
    this.evaluate();
    if (changes.length > 0) this.emit('reconcile', { changes });
  }

  /** Applies a store that someone else changed (see planStoreChanges): what it removed, added, changed, and desired states. */
  private applyStore(snap: StoreSnapshot): string[] {
    const plan = planStoreChanges(snap, {
      specs: this.specs,
      dependentsOf: (name) => this.graph.dependentsOf(name),
      savedDesired: (name) => this.units.get(name)?.savedDesired,
    });
    for (const err of plan.invalid) this.warn(err);
    for (const name of plan.kept) this.warn(new IllegalStateError(`the store no longer has '${name}' but still has services depending on it; kept`));
    for (const name of plan.removed) {
      void this.requestStop(this.unitsOf.get(name)!, undefined).then(
        () => this.specs.has(name) && this.forget(name),
        () => {},
      );
    }
    const stored = new Map(snap.instances.map((i) => [i.name, i]));
    for (const spec of plan.added) {
      try {
        this.define(spec);
        for (const u of this.unitsOf.get(spec.name)!) {
          const rec = stored.get(u.name);
          if (!rec || rec.desired === 'running') void this.requestStart([u]).catch(() => {});
        }
      } catch (err) {
        this.warn(err);
      }
    }
    for (const spec of plan.changed) {
      try {
        this.redefine(spec);
      } catch (err) {
        this.warn(err);
      }
    }
    for (const [name, desired] of plan.desired) {
      const u = this.units.get(name)!;
      if (desired === 'running') void this.requestStart([u]).catch(() => {});
      else void this.requestStop([u], undefined).catch(() => {});
    }
    return plan.changes;
  }

  /** A spec changed in the store: take it; running units restart with it, new instances follow the others. */
  private redefine(spec: ServiceSpec): void {
    for (const d of spec.dependsOn ?? []) if (!this.specs.has(d)) throw new NotFoundError(`stored '${spec.name}' depends on unknown '${d}'; change ignored`);
    this.graph.setDependencies(spec.name, spec.dependsOn ?? []);
    const wanted = this.unitsOf.get(spec.name)!.some((u) => u.desired === 'running');
    const before = new Set(this.unitsOf.get(spec.name)!.map((u) => u.name));
    this.specs.set(spec.name, spec);
    this.syncUnits(spec);
    for (const u of this.unitsOf.get(spec.name)!) {
      if (hasProcess(u.state) || u.state === 'backoff') u.bounce = true;
      else if (!before.has(u.name) && wanted) this.setDesired(u, 'running');
    }
    this.safeStore((s) => s.putService({ spec }));
  }

  // ---- shutdown ----

  private async doShutdown(grace: number | undefined): Promise<void> {
    this.reconciler.stop();
    this.shuttingDown = true;
    const waits: Promise<void>[] = [];
    for (const u of this.units.values()) {
      u.desired = 'stopped';
      u.bounce = false;
      if (grace !== undefined) u.stopGrace = grace;
      waits.push(this.waitFor(u, 'stopped').catch(() => {}));
    }
    this.schedule();
    await Promise.all(waits);
    for (const u of this.units.values()) {
      this.closeLogs(u, true);
      u.adopted?.abort.abort();
      u.mp?.removeAllListeners();
      this.persist(u);
    }
    await Promise.all(this.sinkQueues.map((q) => q.idle(SHUTDOWN_SINK_DRAIN_MS)));
    if (this.store) {
      this.safeStore((s) => {
        s.setOwner(undefined);
        s.flush?.();
      });
      if (this.ownsStore) this.safeStore((s) => s.close());
      if (this.storeKey) heldPaths.delete(this.storeKey);
      else heldStores.delete(this.store);
    }
    this.closed = true;
    this.emit('shutdown');
  }

  // ---- bookkeeping ----

  private to(u: Unit, state: ServiceState, reason: string): void {
    if (u.state === state) {
      u.reason = reason;
      this.persist(u);
      return;
    }
    u.sm.to(state, reason);
  }

  private onStateChange(u: Unit, c: StateChange): void {
    u.reason = c.reason;
    if (c.to === 'running' && !u.adopted) u.startedAt ??= Date.now();
    this.persist(u);
    this.emitSafe('state', c);
    this.settle(u);
    this.schedule();
  }

  private statusOf(u: Unit): ServiceStatus {
    return u.status(this.graph.dependenciesOf(u.service));
  }

  private persist(u: Unit): void {
    if (!this.store || u.removing) return;
    const rec: StoredInstance = {
      name: u.name,
      service: u.service,
      desired: u.savedDesired,
      state: u.state,
      restarts: u.restarts,
      contractRestarts: u.contractRestarts,
      updatedAt: Date.now(),
    };
    if (u.pid !== undefined && u.startTime !== undefined) {
      rec.pid = u.pid;
      rec.startTime = u.startTime.toString();
    }
    if (u.reason !== undefined) rec.reason = u.reason;
    this.safeStore((s) => s.putInstance(rec));
  }

  private safeStore(fn: (s: Store) => void): void {
    if (!this.store) return;
    try {
      fn(this.store);
    } catch (err) {
      this.warn(err);
    }
  }

  private history(u: Unit, type: HistoryEventType, extra: Partial<HistoryEvent>): void {
    const e: HistoryEvent = { type, name: u.name, service: u.service, timestamp: new Date().toISOString() };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) (e as unknown as Record<string, unknown>)[k] = v;
    for (const q of this.sinkQueues) q.push(e);
    this.emitSafe(type, e);
    this.emitSafe('history', e);
  }

  private onSinkTrouble(kind: 'error' | 'drop', t: SinkTrouble): void {
    if (kind === 'error') this.emitSafe('sink-error', { sink: t.sink, error: t.error });
    else this.emitSafe('history-dropped', { sink: t.sink, dropped: t.dropped, totalDropped: t.totalDropped });
  }

  private warn(err: unknown): void {
    this.emitSafe('warning', err instanceof Error ? err : new Error(String(err)));
  }

  /** A listener that throws must not break the manager's bookkeeping: its error surfaces on the next tick. */
  private emitSafe(event: string, ...args: unknown[]): void {
    if (this.deferred) {
      this.deferred.push([event, args]);
      return;
    }
    try {
      this.emit(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

function systemError(err: unknown, what: string): SystemError {
  const e = err as NodeJS.ErrnoException;
  return new SystemError(`${what}: ${e.message}`, { errno: e.code ?? 'EIO', syscall: e.syscall ?? 'open', cause: err });
}
