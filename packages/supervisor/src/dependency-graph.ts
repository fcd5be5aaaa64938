import { CycleError, NotFoundError } from '@libipc/shm';

const EMPTY: ReadonlySet<string> = new Set();

/**
 * Services and what each depends on, kept acyclic: an edge that would close a cycle is refused with
 * CycleError naming it (a → b → a). Orders are deterministic (ties broken by name).
 */
export class DependencyGraph {
  /** node → the nodes it depends on, and the reverse. */
  private readonly deps = new Map<string, Set<string>>();
  private readonly rdeps = new Map<string, Set<string>>();

  has(name: string): boolean {
    return this.deps.has(name);
  }

  nodes(): string[] {
    return [...this.deps.keys()];
  }

  addNode(name: string): void {
    if (this.deps.has(name)) return;
    this.deps.set(name, new Set());
    this.rdeps.set(name, new Set());
  }

  /** Removes a node and every edge to or from it. */
  removeNode(name: string): void {
    for (const d of this.deps.get(name) ?? []) this.rdeps.get(d)?.delete(name);
    for (const d of this.rdeps.get(name) ?? []) this.deps.get(d)?.delete(name);
    this.deps.delete(name);
    this.rdeps.delete(name);
  }

  dependenciesOf(name: string): string[] {
    return [...(this.deps.get(name) ?? [])].sort();
  }

  dependentsOf(name: string): string[] {
    return [...(this.rdeps.get(name) ?? [])].sort();
  }

  /** Unsorted and not copied: for hot paths that only iterate. */
  dependenciesView(name: string): ReadonlySet<string> {
    return this.deps.get(name) ?? EMPTY;
  }

  dependentsView(name: string): ReadonlySet<string> {
    return this.rdeps.get(name) ?? EMPTY;
  }

  /** The cycle that `name → dependsOn` would close, or undefined. */
  cycleThrough(name: string, dependsOn: string): string[] | undefined {
    if (name === dependsOn) return [name, name];
    const path = this.pathBetween(dependsOn, name);
    return path && [name, ...path];
  }

  /** Adds the edge `name depends on dependsOn`; both must be nodes. Throws CycleError when it would close a cycle. */
  addEdge(name: string, dependsOn: string): void {
    this.requireNode(name);
    this.requireNode(dependsOn);
    const cycle = this.cycleThrough(name, dependsOn);
    if (cycle) throw new CycleError(cycle);
    this.link(name, dependsOn);
  }

  removeEdge(name: string, dependsOn: string): boolean {
    this.rdeps.get(dependsOn)?.delete(name);
    return this.deps.get(name)?.delete(dependsOn) ?? false;
  }

  /**
   * Replaces what `name` depends on, all or nothing: every dependency must be a node and none may close a
   * cycle (checked against the graph as it would be).
   */
  setDependencies(name: string, dependsOn: readonly string[]): void {
    this.requireNode(name);
    for (const d of dependsOn) this.requireNode(d, name);
    const before = [...this.deps.get(name)!];
    for (const d of before) this.removeEdge(name, d);
    try {
      for (const d of dependsOn) this.addEdge(name, d);
    } catch (err) {
      for (const d of [...this.deps.get(name)!]) this.removeEdge(name, d);
      for (const d of before) this.link(name, d);
      throw err;
    }
  }

  /** `names` and everything they depend on, transitively. */
  dependencyClosure(names: Iterable<string>): Set<string> {
    return this.closure(names, (n) => this.deps.get(n) ?? []);
  }

  /** `names` and everything that depends on them, transitively. */
  dependentClosure(names: Iterable<string>): Set<string> {
    return this.closure(names, (n) => this.dependentsOf(n));
  }

  /** `subset` (default: every node) with each node after all of its dependencies in the subset. */
  topologicalOrder(subset?: Iterable<string>): string[] {
    const set = new Set(subset ?? this.deps.keys());
    const pending = new Map<string, number>();
    for (const n of set) pending.set(n, [...(this.deps.get(n) ?? [])].filter((d) => set.has(d)).length);
    const ready = [...set].filter((n) => pending.get(n) === 0).sort();
    const out: string[] = [];
    while (ready.length > 0) {
      const n = ready.shift()!;
      out.push(n);
      const freed: string[] = [];
      for (const m of this.dependentsOf(n)) {
        if (!set.has(m)) continue;
        const left = pending.get(m)! - 1;
        pending.set(m, left);
        if (left === 0) freed.push(m);
      }
      ready.push(...freed);
      ready.sort();
    }
    return out;
  }

  /** Some cycle of the graph (first name repeated at the end), or undefined: for graphs built from stored edges. */
  findCycle(): string[] | undefined {
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (n: string): string[] | undefined => {
      state.set(n, 'open');
      stack.push(n);
      for (const d of this.dependenciesOf(n)) {
        if (state.get(d) === 'open') return [...stack.slice(stack.indexOf(d)), d];
        if (state.get(d) === undefined) {
          const c = visit(d);
          if (c) return c;
        }
      }
      stack.pop();
      state.set(n, 'done');
      return undefined;
    };
    for (const n of [...this.deps.keys()].sort()) {
      if (state.get(n) === undefined) {
        const c = visit(n);
        if (c) return c;
      }
    }
    return undefined;
  }

  /** Adds an edge without the cycle check (loading stored edges; call findCycle() after). */
  addEdgeUnchecked(name: string, dependsOn: string): void {
    this.requireNode(name);
    this.requireNode(dependsOn, name);
    this.link(name, dependsOn);
  }

  private link(name: string, dependsOn: string): void {
    this.deps.get(name)!.add(dependsOn);
    this.rdeps.get(dependsOn)!.add(name);
  }

  private requireNode(name: string, of?: string): void {
    if (!this.deps.has(name)) {
      throw new NotFoundError(
        of === undefined
          ? `no service named '${name}'; start it first`
          : `'${of}' depends on '${name}', which this manager does not know; start '${name}' first or remove it from dependsOn`,
      );
    }
  }

  /** A dependency path from `from` to `to` (both included), or undefined. */
  private pathBetween(from: string, to: string): string[] | undefined {
    const prev = new Map<string, string | null>([[from, null]]);
    const queue = [from];
    while (queue.length > 0) {
      const n = queue.shift()!;
      if (n === to) {
        const path: string[] = [];
        for (let p: string | null = n; p !== null; p = prev.get(p)!) path.unshift(p);
        return path;
      }
      for (const d of this.dependenciesOf(n)) {
        if (!prev.has(d)) {
          prev.set(d, n);
          queue.push(d);
        }
      }
    }
    return undefined;
  }

  private closure(names: Iterable<string>, next: (n: string) => Iterable<string>): Set<string> {
    const seen = new Set<string>();
    const stack = [...names];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      for (const m of next(n)) if (!seen.has(m)) stack.push(m);
    }
    return seen;
  }
}
