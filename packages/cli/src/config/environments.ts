// Pure: `env_<name>` blocks of a config (top level and per service), chosen with `--env <name>`.

type Path = ReadonlyArray<PropertyKey>;

/** An `env_<name>` key: the name is what `--env` takes. */
export const ENV_BLOCK = /^env_([A-Za-z0-9._-]+)$/;

/** The config with every `env_<name>` block taken out, and the chosen one merged over its `env`. */
export interface Environments {
  /** The raw config without `env_*` keys (a copy; the input is not changed). */
  data: unknown;
  /** Every environment name the file has, sorted. */
  names: string[];
  /** Each block and where it was (to check its values and name its line). */
  blocks: Array<{ path: Path; value: unknown }>;
  /** True when `environment` was given and no block has that name. */
  unknown: boolean;
}

/**
 * Takes out the `env_<name>` blocks of the top level and of each service. With `environment`, the block of that
 * name is merged over `env` where it is: the top level's over the top `env`, a service's over its own `env`
 * (so a service's variables still win over the top level's). Without it every block is ignored.
 */
export function selectEnvironment(data: unknown, environment?: string): Environments {
  const names = new Set<string>();
  const blocks: Environments['blocks'] = [];
  let found = false;
  const strip = (o: Record<string, unknown>, path: Path): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    let chosen: unknown;
    for (const [k, v] of Object.entries(o)) {
      const m = ENV_BLOCK.exec(k);
      if (!m) {
        out[k] = v;
        continue;
      }
      names.add(m[1]!);
      blocks.push({ path: [...path, k], value: v });
      if (m[1] === environment) chosen = v;
    }
    if (isObject(chosen)) {
      found = true;
      out.env = { ...(isObject(out.env) ? out.env : {}), ...chosen };
    }
    return out;
  };
  if (!isObject(data)) return { data, names: [], blocks, unknown: environment !== undefined };
  const top = strip(data, []);
  const services = top.services;
  if (Array.isArray(services)) top.services = services.map((s, i) => (isObject(s) ? strip(s, ['services', i]) : s));
  else if (isObject(services)) top.services = Object.fromEntries(Object.entries(services).map(([k, s]) => [k, isObject(s) ? strip(s, ['services', k]) : s]));
  return { data: top, names: [...names].sort(), blocks, unknown: environment !== undefined && !found };
}

/** The message of an unknown `--env` name: what the file has instead. */
export function unknownEnvironment(environment: string, names: readonly string[]): string {
  return names.length === 0
    ? `--env ${environment}: the file has no env_<name> blocks; add an env_${environment}: block (top level or per service), or leave --env out`
    : `--env ${environment}: the file has no env_${environment} block; its environments: ${names.join(', ')}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
