// Which log files `libipc logs [query]` reads, from the stores of this user's runs: pure, table-tested.
import { basename } from 'node:path';
import { IllegalStateError, InvalidArgumentError, NotFoundError } from '@libipc/shm';
import { type ServiceSpec, namePattern } from '@libipc/supervisor';

/** One store and the specs it holds. */
export interface StoreSpecs {
  store: string;
  specs: readonly ServiceSpec[];
}

/** One unit's log folder; `label` is what its lines are prefixed with when several are shown. */
export interface LogTarget {
  store: string;
  name: string;
  label: string;
  dir: string;
  keep: number;
}

/** How a store is named on the command line and in labels: its file name without the extension (`services`, `run-123`). */
export function storeLabel(store: string): string {
  return basename(store).replace(/(\.store)?\.[^./]*$/, '');
}

const GLOB = /[*?[\]{}!]/;

/**
 * The units a query names: `name` (a service: all its instances; or one instance), a glob, nothing (everything),
 * each optionally `<store>:` first. An exact name found in several stores is ambiguous: an error lists the choices.
 */
export function selectLogs(query: string | undefined, stores: readonly StoreSpecs[]): LogTarget[] {
  let storePart: string | undefined;
  let namePart = query === undefined || query === '' ? '*' : query;
  const colon = namePart.lastIndexOf(':');
  if (colon >= 0) {
    storePart = namePart.slice(0, colon);
    namePart = namePart.slice(colon + 1) || '*';
  }
  const pool = storePart === undefined ? stores : stores.filter((s) => s.store === storePart || storeLabel(s.store) === storePart || basename(s.store) === storePart);
  if (storePart !== undefined && pool.length === 0) {
    throw new NotFoundError(`no run's store is named '${storePart}'; the stores are: ${stores.map((s) => storeLabel(s.store)).join(', ') || 'none'}`);
  }
  const glob = GLOB.test(namePart);
  const match = glob ? namePattern(namePart, 'logs pattern') : undefined;
  const found: Array<{ store: string; spec: ServiceSpec; names: string[] }> = [];
  for (const { store, specs } of pool) {
    for (const spec of specs) {
      const units = spec.instances === undefined ? [spec.name] : Array.from({ length: spec.instances }, (_, i) => `${spec.name}.${i}`);
      const names = match
        ? units.filter((u) => match(u, spec.instances === undefined ? undefined : spec.name))
        : spec.name === namePart
          ? units
          : units.filter((u) => u === namePart && u !== spec.name);
      if (names.length > 0) found.push({ store, spec, names });
    }
  }
  if (found.length === 0) {
    const where = storePart ?? (stores.length === 1 ? storeLabel(stores[0]!.store) : "this user's libipc runs");
    throw new NotFoundError(`no service ${glob ? 'matches' : 'named'} '${namePart}' in ${where}; 'libipc ps' lists them`);
  }
  const storesFound = new Set(found.map((f) => f.store));
  if (!glob && storesFound.size > 1) {
    const choices = found.flatMap((f) => f.names.map((n) => `${storeLabel(f.store)}:${n}`));
    throw new InvalidArgumentError(`'${namePart}' is in ${storesFound.size} runs' stores; name one: ${choices.join(', ')} (or --store <path>)`);
  }
  const qualify = storesFound.size > 1;
  const targets: LogTarget[] = [];
  for (const f of found) {
    const logs = f.spec.logs ?? 'inherit';
    if (typeof logs === 'string') {
      if (glob) continue; // a pattern shows what has files
      throw new IllegalStateError(`${namePart} does not log to files (logs: '${logs}'); give it logs: { dir } in its config to read its output back`);
    }
    for (const n of f.names) targets.push({ store: f.store, name: n, label: qualify ? `${storeLabel(f.store)}:${n}` : n, dir: logs.dir, keep: logs.keep ?? 5 });
  }
  if (targets.length === 0) throw new IllegalStateError(`no service matching '${namePart}' logs to files; give them logs: { dir } in their config`);
  return targets;
}
