// Pure decisions about which services a command line names and in which order they are acted on.
import { NotFoundError } from '@libipc/shm';

/** 'all', or a glob (as stopAll takes): `worker*`, `api.?`, `{a,b}`. */
export function isPattern(target: string): boolean {
  return target === 'all' || /[*?[\]{}!]/.test(target);
}

/** The glob a target stands for ('all' is every service). */
export function globOf(target: string): string {
  return target === 'all' ? '*' : target;
}

export interface Known {
  /** Every service (spec) name. */
  services: string[];
  /** Every unit: a service without instances, or an instance `name.i`, with its service. */
  units: Array<{ name: string; service: string }>;
  /** The units a glob matches (the Manager's statusAll(glob): a spec's name also matches its instances). */
  match(glob: string): Array<{ name: string; service: string }>;
}

/**
 * The names a command acts on, in the order given, each once: an exact unit or service name as it is, a pattern
 * as the services it matches (a spec's name also matches its instances, as in the Manager). A target that names
 * nothing is ERR_LIBIPC_NOT_FOUND.
 */
export function resolveTargets(targets: readonly string[], known: Known): string[] {
  const out: string[] = [];
  const add = (n: string) => !out.includes(n) && out.push(n);
  for (const t of targets) {
    if (!isPattern(t)) {
      if (!known.services.includes(t) && !known.units.some((u) => u.name === t)) {
        throw new NotFoundError(`no service named '${t}' in the libipc daemon; 'libipc ps' lists them`);
      }
      add(t);
      continue;
    }
    const hits = new Set(known.match(globOf(t)).map((u) => u.service));
    if (hits.size === 0 && t !== 'all') throw new NotFoundError(`no service of the libipc daemon matches '${t}'; 'libipc ps' lists them`);
    for (const s of known.services) if (hits.has(s)) add(s);
  }
  return out;
}

/** Every service `name` depends on, directly or not. */
function dependencyClosure(name: string, depsOf: (s: string) => readonly string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [...depsOf(name)];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    stack.push(...depsOf(d));
  }
  return seen;
}

/**
 * Which of `names` to restart so that each is restarted once, in dependency order: a restart restarts the
 * dependents after what they depend on, so a name that depends (transitively) on another of `names` is left to it.
 */
export function restartRoots(names: readonly string[], depsOf: (s: string) => readonly string[]): string[] {
  const set = new Set(names);
  return names.filter((n) => ![...dependencyClosure(n, depsOf)].some((d) => set.has(d)));
}

/** `names` ordered dependents first (a service is removed once nothing of the set still depends on it). */
export function removalOrder(names: readonly string[], depsOf: (s: string) => readonly string[]): string[] {
  return [...dependencyOrder(names, depsOf)].reverse();
}

/** `names` ordered dependencies first (stable otherwise); dependencies outside `names` are ignored. */
export function dependencyOrder(names: readonly string[], depsOf: (s: string) => readonly string[]): string[] {
  const set = new Set(names);
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (n: string) => {
    if (state.has(n)) return; // done, or a cycle (the Manager refuses those)
    state.set(n, 'visiting');
    for (const d of depsOf(n)) if (set.has(d)) visit(d);
    state.set(n, 'done');
    out.push(n);
  };
  for (const n of names) visit(n);
  return out;
}
