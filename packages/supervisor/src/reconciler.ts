import { type ServiceSpec, specKey, validateSpec } from './spec.js';
import type { StoreSnapshot } from './store.js';

/**
 * The reconciler's clock: runs `tick` every interval (a timer that does not keep the process alive), never two ticks at once:
 * a tick that is still running when the next is due makes that one skip.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  intervalMs: number | undefined;

  constructor(private readonly tick: () => void | Promise<void>) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(intervalMs: number): void {
    this.stop();
    this.intervalMs = intervalMs;
    this.timer = setInterval(() => void this.runOnce(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async runOnce(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.tick();
    } finally {
      this.busy = false;
    }
  }
}

/** What a store changed by someone else asks of the manager. */
export interface StorePlan {
  /** Services gone from the store (nothing still in it depends on them): stop and forget. */
  removed: string[];
  /** Services gone from the store that others in it still depend on: kept. */
  kept: string[];
  /** New specs, each after what it depends on. */
  added: ServiceSpec[];
  /** Specs that differ from the running ones. */
  changed: ServiceSpec[];
  /** Desired states set by hand: [name, desired]. */
  desired: Array<[string, 'running' | 'stopped']>;
  /** Stored specs that are not valid (ignored). */
  invalid: Error[];
  /** One line per change, for the 'reconcile' event. */
  changes: string[];
}

/** Compares a store with what the manager holds; pure, so the manager applies it in one place. */
export function planStoreChanges(
  snap: StoreSnapshot,
  current: {
    specs: ReadonlyMap<string, ServiceSpec>;
    dependentsOf(name: string): string[];
    savedDesired(name: string): 'running' | 'stopped' | undefined;
  },
): StorePlan {
  const plan: StorePlan = { removed: [], kept: [], added: [], changed: [], desired: [], invalid: [], changes: [] };
  const incoming = new Map<string, ServiceSpec>();
  for (const s of snap.services) {
    try {
      const spec = validateSpec(s.spec, 'stored ServiceSpec');
      incoming.set(spec.name, spec);
    } catch (err) {
      plan.invalid.push(err as Error);
    }
  }
  for (const name of current.specs.keys()) {
    if (incoming.has(name)) continue;
    if (current.dependentsOf(name).some((d) => incoming.has(d))) plan.kept.push(name);
    else {
      plan.removed.push(name);
      plan.changes.push(`${name}: removed`);
    }
  }
  for (const spec of dependencyOrder([...incoming.values()])) {
    const old = current.specs.get(spec.name);
    if (!old) {
      plan.added.push(spec);
      plan.changes.push(`${spec.name}: added`);
    } else if (specKey(old) !== specKey(spec)) {
      plan.changed.push(spec);
      plan.changes.push(`${spec.name}: spec changed`);
    }
  }
  for (const rec of snap.instances) {
    const saved = current.savedDesired(rec.name);
    if (saved === undefined || saved === rec.desired || !current.specs.has(rec.service)) continue;
    plan.desired.push([rec.name, rec.desired]);
    plan.changes.push(`${rec.name}: desired ${rec.desired}`);
  }
  return plan;
}

/** Specs ordered so that each comes after what it depends on (those not in the list count as present). */
function dependencyOrder(specs: ServiceSpec[]): ServiceSpec[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: ServiceSpec[] = [];
  const seen = new Set<string>();
  const visit = (s: ServiceSpec) => {
    if (seen.has(s.name)) return; // also ends a cycle: the manager refuses it when it applies the spec
    seen.add(s.name);
    for (const d of s.dependsOn ?? []) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    out.push(s);
  };
  for (const s of specs) visit(s);
  return out;
}
