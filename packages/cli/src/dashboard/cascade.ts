// What else a dashboard action does (or should do) to other services: pure, table-tested. The Manager's rule:
// stop takes the dependents down first, start brings the dependencies up first, restart restarts the dependents.

export interface CascadeSpec {
  name: string;
  dependsOn?: readonly string[];
}

export interface CascadeUnit {
  name: string;
  service: string;
  state: string;
  desired: string;
}

export interface Cascade {
  /** Units the Manager acts on too when asked for this one, besides it. */
  also: string[];
  /** For start: dependents that a stop took down (desired stopped) — the dashboard starts them too when asked. */
  dependents: string[];
}

const DOWN = new Set(['stopped', 'exited', 'failed']);

function closure(start: string, next: (s: string) => readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...next(start)];
  while (todo.length > 0) {
    const s = todo.pop()!;
    if (seen.has(s) || s === start) continue;
    seen.add(s);
    todo.push(...next(s));
  }
  return seen;
}

/** The cascade of `action` on `target` (a service or one instance), given every spec and unit of its store. */
export function cascadeOf(action: 'stop' | 'start' | 'restart', target: string, specs: readonly CascadeSpec[], units: readonly CascadeUnit[]): Cascade {
  const service = units.find((u) => u.name === target)?.service ?? target;
  const dependsOn = (s: string) => specs.find((x) => x.name === s)?.dependsOn ?? [];
  const dependents = (s: string) => specs.filter((x) => (x.dependsOn ?? []).includes(s)).map((x) => x.name);
  const unitsOf = (services: Set<string>) => units.filter((u) => services.has(u.service));
  if (action === 'start') {
    return {
      also: unitsOf(closure(service, dependsOn)).filter((u) => u.state !== 'running').map((u) => u.name),
      dependents: unitsOf(closure(service, dependents)).filter((u) => u.desired === 'stopped').map((u) => u.name),
    };
  }
  return { also: unitsOf(closure(service, dependents)).filter((u) => !DOWN.has(u.state)).map((u) => u.name), dependents: [] };
}

/** `api, worker.0-2`: names, with runs of instances of one service shortened. */
export function compactNames(names: readonly string[]): string {
  const out: string[] = [];
  const sorted = [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (let i = 0; i < sorted.length; ) {
    const m = /^(.*)\.(\d+)$/.exec(sorted[i]!);
    if (!m) {
      out.push(sorted[i++]!);
      continue;
    }
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === `${m[1]}.${Number(m[2]) + (j + 1 - i)}`) j++;
    out.push(j > i ? `${sorted[i]}-${Number(m[2]) + (j - i)}` : sorted[i]!);
    i = j + 1;
  }
  return out.join(', ');
}
