import { CycleError, ExistsError, IllegalStateError, NotFoundError, selfIdentity } from '@libipc/shm';
import { type Identity, alive, dying, findOrphans } from './adoption.js';
import type { Announcer } from './announcer.js';
import type { Control } from './control.js';
import type { Persistence } from './persistence.js';
import { planStoreChanges } from './reconciler.js';
import type { Registry } from './registry.js';
import { type ServiceSpec, validateSpec } from './spec.js';
import { hasProcess } from './states.js';
import type { Store, StoreSnapshot } from './store.js';
import type { Unit } from './unit.js';

/** What a store says, taken into the manager: at its start (restore, adoption) and when someone else changed it. */
export interface Parts {
  reg: Registry;
  control: Control;
  books: Persistence;
  out: Announcer;
}

/** Takes over what an earlier manager left in the store. Returns the units that should be started. */
export function restore({ reg, control, books, out }: Parts, store: Store): Unit[] {
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
    if (reg.specs.has(s.name)) throw new ExistsError(`the store holds two services named '${s.name}'`);
    reg.specs.set(s.name, s);
    reg.graph.addNode(s.name);
  }
  for (const s of specs) for (const d of s.dependsOn ?? []) reg.graph.addEdgeUnchecked(s.name, d);
  const cycle = reg.graph.findCycle();
  if (cycle) throw new CycleError(cycle, `the store holds a dependency cycle: ${cycle.join(' → ')}; remove one of these dependencies from the store`);
  const stored = new Map(snap.instances.map((i) => [i.name, i]));
  for (const s of specs) reg.syncUnits(s, stored);
  store.setOwner({ pid: me.pid, startTime: String(me.startTime) });

  const adoptedPids = new Set<number>();
  for (const u of reg.units.values()) {
    const rec = stored.get(u.name);
    if (rec?.pid === undefined || rec.startTime === undefined) continue;
    const id = { pid: rec.pid, startTime: BigInt(rec.startTime) };
    if (alive(id)) {
      control.exec.adopt(u, id, 'recorded in the store');
      adoptedPids.add(id.pid);
    }
  }
  if (oldOwner && dying(oldOwner)) {
    // Children the old manager started but whose identity never reached the store.
    for (const o of findOrphans(oldOwner, adoptedPids)) {
      const spec = reg.specs.get(o.service);
      const name = spec?.instances === undefined ? o.service : `${o.service}.${o.instanceId}`;
      const u = reg.units.get(name);
      if (u && !u.adopted && u.service === o.service) control.exec.adopt(u, o, 'found by its environment');
      else out.warn(new IllegalStateError(`pid ${o.pid} was started by the previous manager for '${name}', which is ${u ? 'already adopted' : 'not in the store'}; left alone`));
    }
  }
  const toStart: Unit[] = [];
  for (const u of reg.units.values()) {
    const rec = stored.get(u.name);
    if (!u.adopted && rec) books.persist(u);
    if (u.desired === 'running' && !u.adopted && u.state === 'stopped') {
      u.reason = rec?.pid !== undefined ? `pid ${rec.pid} was gone when this manager started` : 'restored from the store';
      toStart.push(u);
    }
  }
  return toStart;
}

/** Applies a store that someone else changed (see planStoreChanges): what it removed, added, changed, and desired states. */
export function applyStore(parts: Parts, snap: StoreSnapshot): string[] {
  const { reg, control, out } = parts;
  const plan = planStoreChanges(snap, {
    specs: reg.specs,
    dependentsOf: (name) => reg.graph.dependentsOf(name),
    savedDesired: (name) => reg.units.get(name)?.savedDesired,
  });
  for (const err of plan.invalid) out.warn(err);
  for (const name of plan.kept) out.warn(new IllegalStateError(`the store no longer has '${name}' but still has services depending on it; kept`));
  for (const name of plan.removed) {
    void control.requestStop(reg.unitsOf.get(name)!, undefined).then(
      () => reg.specs.has(name) && reg.forget(name),
      () => {},
    );
  }
  const stored = new Map(snap.instances.map((i) => [i.name, i]));
  for (const spec of plan.added) {
    try {
      reg.define(spec);
      for (const u of reg.unitsOf.get(spec.name)!) {
        const rec = stored.get(u.name);
        if (!rec || rec.desired === 'running') void control.requestStart([u]).catch(() => {});
      }
    } catch (err) {
      out.warn(err);
    }
  }
  for (const spec of plan.changed) {
    try {
      redefine(parts, spec);
    } catch (err) {
      out.warn(err);
    }
  }
  for (const [name, desired] of plan.desired) {
    const u = reg.units.get(name)!;
    if (desired === 'running') void control.requestStart([u]).catch(() => {});
    else void control.requestStop([u], undefined).catch(() => {});
  }
  return plan.changes;
}

/** A spec changed in the store: take it; running units restart with it, new instances follow the others. */
function redefine({ reg, control, books }: Parts, spec: ServiceSpec): void {
  for (const d of spec.dependsOn ?? []) if (!reg.specs.has(d)) throw new NotFoundError(`stored '${spec.name}' depends on unknown '${d}'; change ignored`);
  reg.graph.setDependencies(spec.name, spec.dependsOn ?? []);
  const wanted = reg.unitsOf.get(spec.name)!.some((u) => u.desired === 'running');
  const before = new Set(reg.unitsOf.get(spec.name)!.map((u) => u.name));
  reg.specs.set(spec.name, spec);
  reg.syncUnits(spec);
  for (const u of reg.unitsOf.get(spec.name)!) {
    if (hasProcess(u.state) || u.state === 'backoff') u.bounce = true;
    else if (!before.has(u.name) && wanted) control.setDesired(u, 'running');
  }
  books.safe((s) => s.putService({ spec }));
}

/** One pass of the reconciler: adopted processes gone unnoticed, a store changed by someone else. One line per change. */
export function reconcileOnce(parts: Parts): string[] {
  const { reg, control, books, out } = parts;
  const changes = control.exec.checkAdopted(reg.units.values());
  if (books.store?.changedExternally?.()) {
    try {
      changes.push(...applyStore(parts, books.store.load()));
    } catch (err) {
      out.warn(err);
    }
  }
  control.evaluate();
  return changes;
}
