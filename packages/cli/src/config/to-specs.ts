import { isAbsolute, resolve } from 'node:path';
import { type LogsSpec, type ServiceSpec, type WatchSpec, nextCronFire } from '@libipc/supervisor';
import { ConfigError } from '../errors.js';
import type { FileConfig, ServiceConfig } from './schema.js';
import { parseSize } from './size.js';

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
  return order.map((n) => toSpec(byName.get(n)!.svc, deps(byName.get(n)!.svc), ctx, byName.get(n)!.path));
}

function toSpec(s: ServiceConfig, dependsOn: string[], ctx: Context, path: Path): ServiceSpec {
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
  const fail = (field: string, detail: string) => new ConfigError(ctx.file, ctx.where([...path, field]), `services.${s.name}.${field}`, detail);
  if (s.maxMemory !== undefined) {
    const bytes = typeof s.maxMemory === 'number' ? s.maxMemory : parseSize(s.maxMemory)!;
    if (bytes < MIN_MAX_MEMORY) throw fail('maxMemory', `${s.maxMemory} is less than 1M; give bytes or a size like '300M'`);
    spec.maxMemory = bytes;
  }
  if (s.memoryGraceMs !== undefined) spec.memoryGraceMs = s.memoryGraceMs;
  if (s.cronRestart !== undefined) {
    let ok: boolean;
    try {
      ok = nextCronFire(s.cronRestart, new Date()) !== undefined;
    } catch (err) {
      throw fail('cronRestart', `'${s.cronRestart}' is not a cron expression (${(err as Error).message.replace(/^CronPattern: /, '')}); use 5 fields 'min hour day month weekday' or 6 with seconds first, e.g. '0 3 * * *'`);
    }
    if (!ok) throw fail('cronRestart', `'${s.cronRestart}' never fires (no such date); check the day and month fields`);
    spec.cronRestart = s.cronRestart;
  }
  const watch = toWatch(s.watch, at(s.cwd ?? '.'));
  if (watch) spec.watch = watch;
  return spec;
}

/** Below this a maxMemory is surely a unit mistake (the supervisor refuses it too). */
const MIN_MAX_MEMORY = 1024 * 1024;

/** `watch` of a config: relative paths are the service's cwd's; `true` watches its cwd. */
export function toWatch(w: ServiceConfig['watch'], cwd: string): WatchSpec | undefined {
  if (w === undefined || w === false) return undefined;
  const list = (v: string | string[] | undefined) => (v === undefined ? [] : typeof v === 'string' ? [v] : v);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  if (w === true) return { paths: [cwd] };
  if (typeof w === 'string' || Array.isArray(w)) return { paths: list(w).map(abs) };
  const paths = list(w.paths).map(abs);
  const out: WatchSpec = { paths: paths.length > 0 ? paths : [cwd] };
  if (w.ignore !== undefined) out.ignore = list(w.ignore);
  if (w.debounceMs !== undefined) out.debounceMs = w.debounceMs;
  return out;
}

function toLogs(logs: NonNullable<FileConfig['logs']>, at: (p: string) => string): LogsSpec {
  if (logs === 'inherit' || logs === 'ignore') return logs;
  if (typeof logs === 'string') return { dir: at(logs) };
  const out: LogsSpec = { dir: at(logs.dir) };
  if (logs.maxBytes !== undefined) out.maxBytes = logs.maxBytes;
  if (logs.keep !== undefined) out.keep = logs.keep;
  return out;
}
