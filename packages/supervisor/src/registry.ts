import { CycleError, ExistsError, InvalidArgumentError, NotFoundError, describeValue } from '@libipc/shm';
import { DependencyGraph } from './dependency-graph.js';
import { namePattern } from './pattern.js';
import type { Persistence } from './persistence.js';
import { CancelledError, type World } from './planner.js';
import { type ServiceSpec, instanceNames, resolveSpec } from './spec.js';
import { type ServiceState, type StateChange, hasProcess } from './states.js';
import type { StoredInstance } from './store.js';
import { type ServiceStatus, Unit } from './unit.js';
import { closeLogs } from './unit-logs.js';

/** What the registry asks of the rest of the manager. */
export interface RegistryHooks {
  /** A unit's state changed. */
  onChange(u: Unit, c: StateChange): void;
  /** An instance no longer in its spec but still busy: stop it, then drop it. */
  retire(u: Unit): void;
}

/** Whether a unit has a process, a pending restart or a start or stop in flight. */
export function busy(u: Unit): boolean {
  return hasProcess(u.state) || u.state === 'backoff' || u.starting || u.stopping;
}

/** The services the manager knows: their specs, their units (one per instance), and the dependency graph between them. */
export class Registry {
  readonly specs = new Map<string, ServiceSpec>();
  readonly units = new Map<string, Unit>();
  readonly unitsOf = new Map<string, Unit[]>();
  readonly graph = new DependencyGraph();

  constructor(
    private readonly books: Persistence,
    private readonly hooks: RegistryHooks,
  ) {}

  /** The planner's view of the units and the graph. */
  world(isShuttingDown: () => boolean): World {
    return {
      unitsOf: (s) => this.unitsOf.get(s) ?? [],
      dependenciesOf: (s) => this.graph.dependenciesView(s),
      dependentsOf: (s) => this.graph.dependentsView(s),
      dependencyClosure: (s) => this.graph.dependencyClosure(s),
      isShuttingDown,
    };
  }

  // ---- lookups ----

  requireService(name: unknown): void {
    if (typeof name !== 'string') throw new InvalidArgumentError(`a service name must be a string, got ${describeValue(name)}`);
    if (!this.specs.has(name)) {
      throw new NotFoundError(`no service named '${name}'${this.units.has(name) ? ' (that is an instance; dependencies are between services)' : ''}`);
    }
  }

  /** The units a name means: one unit, or every instance of a spec. */
  unitsNamed(name: unknown): Unit[] {
    if (typeof name !== 'string') throw new InvalidArgumentError(`name must be a string, got ${describeValue(name)}`);
    const u = this.units.get(name);
    if (u) return [u];
    const of = this.unitsOf.get(name);
    if (of) return [...of];
    throw new NotFoundError(`no service named '${name}'`);
  }

  /** The units whose name (or service, for instances) matches the glob. */
  matching(pattern: string): Unit[] {
    const match = namePattern(pattern);
    return [...this.units.values()].filter((u) => match(u.name, u.raw.instances === undefined ? undefined : u.service));
  }

  /** The units of `services`' dependency (or dependent) closure that are not of `services` themselves. */
  closureUnits(services: ReadonlySet<string>, closure: Iterable<string>): Unit[] {
    const out: Unit[] = [];
    for (const s of closure) if (!services.has(s)) out.push(...this.unitsOf.get(s)!);
    return out;
  }

  statusOf(u: Unit): ServiceStatus {
    return u.status(this.graph.dependenciesOf(u.service));
  }

  // ---- definitions ----

  /** Adds or replaces a spec (not started here). */
  define(spec: ServiceSpec): void {
    const names = instanceNames(spec);
    for (const n of names) {
      const other = this.units.get(n);
      if (other && other.service !== spec.name) throw new ExistsError(`'${n}' is already the name of ${other.service === other.name ? 'a service' : `an instance of ${other.service}`}; pick another name`);
    }
    if (this.units.has(spec.name) && this.units.get(spec.name)!.service !== spec.name) {
      throw new ExistsError(`'${spec.name}' is already the name of an instance of ${this.units.get(spec.name)!.service}; pick another name`);
    }
    const running = this.unitsOf.get(spec.name)?.find(busy);
    if (running) {
      throw new ExistsError(`a service named '${spec.name}' is already ${running.state}; stop it first, or restart('${spec.name}') to restart it`);
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
    this.books.safe((s) => s.putService({ spec }));
  }

  /** Makes the units of a spec match its instances (new ones stopped; extra ones, which are stopped, removed). */
  syncUnits(spec: ServiceSpec, stored?: Map<string, StoredInstance>): void {
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
        u = new Unit(n, spec.name, i, spec, resolved, initial, (c) => this.hooks.onChange(u!, c));
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
      if (busy(u)) this.hooks.retire(u);
      else this.dropUnit(u);
    }
    this.unitsOf.set(spec.name, next);
  }

  /** A spec changed without its instances changing (its dependencies). */
  updateSpec(spec: ServiceSpec): void {
    this.specs.set(spec.name, spec);
    const resolved = resolveSpec(spec);
    for (const u of this.unitsOf.get(spec.name) ?? []) {
      u.raw = spec;
      u.spec = resolved;
    }
    this.books.safe((s) => s.putService({ spec }));
  }

  dropUnit(u: Unit): void {
    u.removing = true;
    for (const w of u.waiters.splice(0)) w.reject(new CancelledError(`${u.name} was removed`));
    closeLogs(u, true);
    u.mp?.removeAllListeners();
    u.adopted?.abort.abort();
    this.units.delete(u.name);
    this.books.safe((s) => s.deleteInstance(u.name));
  }

  forget(service: string): void {
    for (const u of this.unitsOf.get(service) ?? []) this.dropUnit(u);
    this.unitsOf.delete(service);
    this.specs.delete(service);
    this.graph.removeNode(service);
    this.books.safe((s) => s.deleteService(service));
  }
}
