import { isAbsolute, resolve } from 'node:path';
import type { LogsSpec, ServiceSpec } from '@libipc/supervisor';
import { ConfigError } from '../errors.js';
import type { FileConfig, ServiceConfig } from './schema.js';

type Path = ReadonlyArray<PropertyKey>;

interface Context {
  /** The config file's folder: relative cwd, logs and commands are relative to it. */
  base: string;
  file: string;
  where: (p: Path) => number | undefined;
  logs: FileConfig['logs'];
  defaultLogs: string | undefined;
}

/**
 * Supervisor specs from checked services, dependencies first. Unknown dependencies, dependency cycles and
 * names taken twice (instances included: `worker` with 2 instances is `worker.0` and `worker.1`) are
 * ConfigErrors naming the place.
 */
export function toSpecs(services: Array<{ svc: ServiceConfig; path: Path }>, ctx: Context): ServiceSpec[] {
  const byName = new Map<string, { svc: ServiceConfig; path: Path }>();
  const taken = new Map<string, string>();
  for (const s of services) {
    const name = s.svc.name!;
    const names = s.svc.instances === undefined ? [name] : Array.from({ length: s.svc.instances }, (_, i) => `${name}.${i}`);
    for (const n of [name, ...names]) {
      const other = taken.get(n);
      if (other !== undefined && other !== name) {
        throw new ConfigError(ctx.file, ctx.where(s.path), `services.${name}`, `the name '${n}' is also taken by service '${other}'; rename one of them`);
      }
      if (!/^[A-Za-z0-9._-]{1,63}$/.test(n)) {
        throw new ConfigError(ctx.file, ctx.where([...s.path, 'instances']), `services.${name}.instances`, `instance name '${n}' is longer than 63 characters`);
      }
    }
    if (byName.has(name)) throw new ConfigError(ctx.file, ctx.where([...s.path, 'name']), `services.${name}`, `a second service named '${name}'; names must be unique`);
    byName.set(name, s);
    for (const n of [name, ...names]) taken.set(n, name);
  }
  const deps = (s: ServiceConfig) => (s.dependsOn === undefined ? [] : typeof s.dependsOn === 'string' ? [s.dependsOn] : [...new Set(s.dependsOn)]);
  for (const { svc, path } of services) {
    deps(svc).forEach((d, i) => {
      if (!byName.has(d)) {
        const at = typeof svc.dependsOn === 'string' ? [...path, 'dependsOn'] : [...path, 'dependsOn', i];
        throw new ConfigError(ctx.file, ctx.where(at), `services.${svc.name}.dependsOn`, `unknown service '${d}'; known: ${[...byName.keys()].join(', ')}`);
      }
    });
  }
  // Depth-first, dependencies first: the order to start them in; a service met again while on the stack closes a cycle.
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(name)), name];
      const first = byName.get(cycle[0]!)!;
      throw new ConfigError(ctx.file, ctx.where([...first.path, 'dependsOn']), `services.${cycle[0]}.dependsOn`, `dependency cycle ${cycle.join(' → ')}; remove one of these dependencies`);
    }
    state.set(name, 'visiting');
    stack.push(name);
    for (const d of deps(byName.get(name)!.svc)) visit(d);
    stack.pop();
    state.set(name, 'done');
    order.push(name);
  };
  for (const s of services) visit(s.svc.name!);
  return order.map((n) => toSpec(byName.get(n)!.svc, deps(byName.get(n)!.svc), ctx));
}

function toSpec(s: ServiceConfig, dependsOn: string[], ctx: Context): ServiceSpec {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(ctx.base, p));
  const [command0, ...commandArgs] = typeof s.command === 'string' ? [s.command] : s.command;
  // `node` is the Node that runs libipc (the same version, whatever PATH says); a path with a slash is the file's.
  const command = command0 === 'node' ? process.execPath : command0!.includes('/') ? at(command0!) : command0!;
  const spec: ServiceSpec = { name: s.name!, command, cwd: at(s.cwd ?? '.') };
  const args = [...commandArgs, ...(s.args ?? [])];
  if (args.length > 0) spec.args = args;
  if (s.env) spec.env = s.env;
  if (s.instances !== undefined) spec.instances = s.instances;
  if (s.restart !== undefined) {
    const r = typeof s.restart === 'string' ? { policy: s.restart } : s.restart;
    // A partial backoff is completed with @libipc/process's defaults (100 ms, x2, at most 30 s).
    spec.restart = r.backoff ? { ...r, backoff: { initialMs: 100, factor: 2, maxMs: 30_000, ...r.backoff } } : { ...r, backoff: undefined };
    if (spec.restart.backoff === undefined) delete spec.restart.backoff;
  }
  if (s.restartLimit !== undefined) spec.restartLimit = s.restartLimit;
  if (dependsOn.length > 0) spec.dependsOn = dependsOn;
  if (s.readiness !== undefined) spec.readiness = s.readiness;
  if (s.startTimeoutMs !== undefined) spec.startTimeoutMs = s.startTimeoutMs;
  if (s.stopTimeoutMs !== undefined) spec.stopTimeoutMs = s.stopTimeoutMs;
  if (s.listen !== undefined) spec.listen = typeof s.listen === 'number' ? [s.listen] : [...new Set(s.listen)];
  const logs = s.logs ?? ctx.logs ?? ctx.defaultLogs;
  if (logs !== undefined) spec.logs = toLogs(logs, at);
  return spec;
}

function toLogs(logs: NonNullable<FileConfig['logs']>, at: (p: string) => string): LogsSpec {
  if (logs === 'inherit' || logs === 'ignore') return logs;
  if (typeof logs === 'string') return { dir: at(logs) };
  const out: LogsSpec = { dir: at(logs.dir) };
  if (logs.maxBytes !== undefined) out.maxBytes = logs.maxBytes;
  if (logs.keep !== undefined) out.keep = logs.keep;
  return out;
}
