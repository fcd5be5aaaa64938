// The daemon's commands: a table from a request's `cmd` to what the daemon's Manager does for it.
import { truncateSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, LibipcError, NotFoundError } from '@libipc/shm';
import type { Manager, ReloadReport, ServiceSpec, ServiceStatus } from '@libipc/supervisor';
import { z } from 'zod';
import { lastLines, logFile, mergeByTime } from '../log-files.js';
import { type Dump, readDump, writeDump } from './dump.js';
import type { DaemonHome } from './home.js';
import { type Known, dependencyOrder, removalOrder, resolveTargets, restartRoots } from './targets.js';
import type { Usage, UsageSampler } from './usage-sampler.js';

export interface DaemonContext {
  manager: Manager;
  /** Every service's spec as the daemon defined it (the Manager keeps its own; this is the copy save writes). */
  specs: Map<string, ServiceSpec>;
  home: DaemonHome;
  sampler: UsageSampler;
  version: string;
  pid: number;
  startedAt: number;
  log(line: string): void;
  /** Ends the daemon once the current reply is written. */
  exit(): void;
}

export type Handler = (args: Record<string, unknown>, ctx: DaemonContext) => unknown;

/** One service (or instance) as `libipc ps` prints it. */
export interface DaemonRow {
  name: string;
  service: string;
  state: string;
  desired: string;
  pid: number | null;
  restarts: number;
  uptimeMs: number;
  reason: string | null;
  /** The last restart: what caused it (trigger), why, when (ISO). */
  lastRestart: { trigger: string; reason: string; time: string } | null;
  adopted: boolean;
  lastExit: { code: number | null; signal: string | null; time: string } | null;
  cpu: number | null;
  rssBytes: number | null;
}

export function rowOf(s: ServiceStatus, usage?: Usage): DaemonRow {
  return {
    name: s.name,
    service: s.service,
    state: s.state,
    desired: s.desired,
    pid: s.pid ?? null,
    restarts: s.restarts,
    uptimeMs: s.uptimeMs,
    reason: s.reason ?? null,
    lastRestart: s.lastRestart ? { trigger: s.lastRestart.trigger, reason: s.lastRestart.reason, time: s.lastRestart.time.toISOString() } : null,
    adopted: s.adopted,
    lastExit: s.lastExit ? { code: s.lastExit.exitCode ?? null, signal: s.lastExit.signal ?? null, time: s.lastExit.time.toISOString() } : null,
    cpu: usage?.cpu ?? null,
    rssBytes: usage?.rssBytes ?? null,
  };
}

const targetsArgs = z.object({ targets: z.array(z.string().min(1).max(200)).min(1).max(1000) });
const startArgs = z.object({ specs: z.array(z.record(z.string(), z.unknown())).min(1).max(10_000) });
const reloadArgs = z.union([
  z.object({ targets: targetsArgs.shape.targets, minAvailable: z.number().int().min(0).max(10_000).optional() }),
  // A config file's services with an environment chosen (`libipc reload <file> --env <name>`): the new specs.
  z.object({ specs: startArgs.shape.specs, minAvailable: z.number().int().min(0).max(10_000).optional() }),
]);
const flushArgs = z.object({ target: z.string().min(1).max(200).optional() });

function parse<T>(schema: z.ZodType<T>, args: unknown, cmd: string): T {
  const r = schema.safeParse(args);
  if (!r.success) throw new InvalidArgumentError(`${cmd}: ${r.error.issues[0]?.path.join('.') || 'args'}: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}

function known(m: Manager, specs: Map<string, ServiceSpec>): Known {
  const units = m.statusAll().map((s) => ({ name: s.name, service: s.service }));
  return { services: [...specs.keys()], units, match: (glob) => m.statusAll(glob).map((s) => ({ name: s.name, service: s.service })) };
}

/** Dependencies of a service or of an instance's service. */
function depsOf(ctx: DaemonContext): (name: string) => readonly string[] {
  const serviceOf = new Map(ctx.manager.statusAll().map((s) => [s.name, s.service]));
  return (n) => ctx.specs.get(serviceOf.get(n) ?? n)?.dependsOn ?? [];
}

/** Stable JSON of a spec, to tell whether a start changes a known one. */
function specKey(spec: unknown): string {
  return JSON.stringify(spec, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

function errorOf(err: unknown): { code: string; message: string } {
  return { code: err instanceof LibipcError ? err.code : 'ERR_LIBIPC_SYSTEM', message: err instanceof Error ? err.message : String(err) };
}

/** The last log lines of a service's units (what a failed start shows). */
function tailOf(ctx: DaemonContext, spec: ServiceSpec | undefined, n = 15): string[] {
  const logs = spec?.logs;
  if (!spec || !logs || typeof logs === 'string') return [];
  const units = ctx.manager.statusAll(spec.name).filter((s) => s.service === spec.name);
  const sources = units.flatMap((u) => (['stdout', 'stderr'] as const).map((st) => ({ label: u.name, lines: lastLines(logFile(logs.dir, u.name, st), n, logs.keep ?? 5) })));
  return mergeByTime(sources, n).map((l) => (units.length > 1 ? `${l.label} | ${l.line}` : l.line));
}

export interface StartOutcome {
  name: string;
  ok: boolean;
  code?: string;
  message?: string;
  rows: DaemonRow[];
  lastLines: string[];
}

/** Defines (or redefines) and starts each spec, dependencies first; resolves once each is ready or failed. */
async function start(args: Record<string, unknown>, ctx: DaemonContext): Promise<StartOutcome[]> {
  const m = ctx.manager;
  const specs = parse(startArgs, args, 'start').specs as unknown as ServiceSpec[];
  const waits: Array<Promise<StartOutcome>> = [];
  for (const spec of specs) {
    const old = ctx.specs.get(spec.name);
    let p: Promise<void>;
    if (old && specKey(old) === specKey(spec)) p = m.start(spec.name);
    else {
      // A changed spec: stopped (its dependents with it), redefined, and what ran of it started again.
      const dependents = old ? m.statusAll().filter((s) => s.desired === 'running' && s.service !== spec.name && (ctx.specs.get(s.service)?.dependsOn ?? []).includes(spec.name)) : [];
      if (old) await m.stop(spec.name).catch(() => undefined);
      p = m.start(spec);
      ctx.specs.set(spec.name, spec);
      for (const d of dependents) void m.start(d.service).catch(() => undefined);
    }
    ctx.specs.set(spec.name, spec);
    waits.push(
      p.then(
        () => ({ name: spec.name, ok: true }),
        (err: unknown) => ({ name: spec.name, ok: false, ...errorOf(err) }),
      ).then((o) => ({ ...o, rows: m.statusAll(spec.name).filter((s) => s.service === spec.name).map((s) => rowOf(s)), lastLines: o.ok ? [] : tailOf(ctx, spec) })),
    );
  }
  const out = await Promise.all(waits);
  for (const o of out) ctx.log(o.ok ? `started ${o.name}` : `start of ${o.name} failed: ${o.message}`);
  return out;
}

async function stop(args: Record<string, unknown>, ctx: DaemonContext): Promise<DaemonRow[]> {
  const m = ctx.manager;
  const names = resolveTargets(parse(targetsArgs, args, 'stop').targets, known(m, ctx.specs));
  // Each stop stops its dependents first; together they settle in dependency order.
  await Promise.all(names.map((n) => m.stop(n)));
  ctx.log(`stopped ${names.join(', ') || 'nothing'}`);
  return names.flatMap((n) => m.statusAll(n).map((s) => rowOf(s)));
}

async function restart(args: Record<string, unknown>, ctx: DaemonContext): Promise<DaemonRow[]> {
  const m = ctx.manager;
  const names = resolveTargets(parse(targetsArgs, args, 'restart').targets, known(m, ctx.specs));
  // A restart restarts the dependents after what they depend on: only the roots of the set are asked for.
  await Promise.all(restartRoots(names, depsOf(ctx)).map((n) => m.restart(n)));
  ctx.log(`restarted ${names.join(', ') || 'nothing'}`);
  return names.flatMap((n) => m.statusAll(n).map((s) => rowOf(s)));
}

/** What `libipc reload` prints for one name it was given (or one service a pattern matched). */
export interface ReloadOutcome {
  name: string;
  ok: boolean;
  replaced: Array<{ name: string; oldPid: number | null; newPid: number }>;
  started: string[];
  skipped: Array<{ name: string; reason: string }>;
  code?: string;
  message?: string;
}

/** Zero-downtime reload of each service named, one after another; a failure ends it (what follows is not reloaded). */
async function reload(args: Record<string, unknown>, ctx: DaemonContext): Promise<ReloadOutcome[]> {
  const m = ctx.manager;
  const a = parse(reloadArgs, args, 'reload');
  const specs = new Map('specs' in a ? (a.specs as unknown as ServiceSpec[]).map((s) => [s.name, s] as const) : []);
  for (const name of specs.keys()) if (!ctx.specs.has(name)) throw new NotFoundError(`reload: '${name}' does not run in the daemon; start it first (libipc start)`);
  const names = 'targets' in a ? resolveTargets(a.targets, known(m, ctx.specs)) : [...specs.keys()];
  const out: ReloadOutcome[] = [];
  for (const n of names) {
    try {
      const spec = specs.get(n);
      const r = await m.reload(n, { ...(a.minAvailable === undefined ? {} : { minAvailable: a.minAvailable }), ...(spec ? { spec } : {}) });
      if (spec) ctx.specs.set(n, spec);
      out.push({ name: n, ok: true, replaced: r.replaced.map((x) => ({ ...x, oldPid: x.oldPid ?? null })), started: r.started, skipped: r.skipped });
      ctx.log(`reloaded ${n}: ${r.replaced.length} replaced, ${r.started.length} started`);
    } catch (err) {
      const report = (err as { report?: ReloadReport }).report;
      out.push({
        name: n,
        ok: false,
        replaced: (report?.replaced ?? []).map((x) => ({ ...x, oldPid: x.oldPid ?? null })),
        started: report?.started ?? [],
        skipped: report?.skipped ?? [],
        ...errorOf(err),
      });
      ctx.log(`reload of ${n} failed: ${(err as Error).message}`);
      break;
    }
  }
  return out;
}

async function remove(args: Record<string, unknown>, ctx: DaemonContext): Promise<string[]> {
  const m = ctx.manager;
  const names = resolveTargets(parse(targetsArgs, args, 'delete').targets, known(m, ctx.specs));
  for (const n of names) {
    if (!ctx.specs.has(n)) throw new NotFoundError(`'${n}' is an instance; delete its service (${m.status(n).service})`);
  }
  const removed: string[] = [];
  for (const n of removalOrder(names, depsOf(ctx))) {
    await m.remove(n);
    ctx.specs.delete(n);
    removed.push(n);
  }
  ctx.log(`deleted ${removed.join(', ') || 'nothing'}`);
  return removed;
}

function ps(_args: Record<string, unknown>, ctx: DaemonContext): DaemonRow[] {
  const all = ctx.manager.statusAll();
  const usage = ctx.sampler.look(all.flatMap((s) => (s.pid !== undefined && s.state !== 'stopped' ? [s.pid] : [])));
  return all.map((s) => rowOf(s, s.pid !== undefined ? usage.get(s.pid) : undefined));
}

function save(_args: Record<string, unknown>, ctx: DaemonContext): { path: string; services: number } {
  const order = dependencyOrder([...ctx.specs.keys()], (n) => ctx.specs.get(n)?.dependsOn ?? []);
  const desired = new Map<string, boolean>();
  for (const s of ctx.manager.statusAll()) desired.set(s.service, (desired.get(s.service) ?? false) || s.desired === 'running');
  const dump = writeDump(
    ctx.home.dump,
    order.map((n) => ({ spec: ctx.specs.get(n)!, running: desired.get(n) ?? false })),
  );
  ctx.log(`saved ${dump.services.length} service(s) to ${ctx.home.dump}`);
  return { path: ctx.home.dump, services: dump.services.length };
}

/** Starts what was saved running (a running one is left as it is; a changed one is redefined). */
export async function resurrect(_args: Record<string, unknown>, ctx: DaemonContext): Promise<StartOutcome[]> {
  const dump: Dump = readDump(ctx.home.dump);
  await ctx.manager.loaded;
  const wanted = dump.services.filter((s) => s.running).map((s) => s.spec);
  const out = wanted.length > 0 ? await start({ specs: wanted }, ctx) : [];
  // The Manager defines a spec only by starting it: services saved stopped are left for 'libipc start'.
  const skipped = dump.services.filter((s) => !s.running).map((s) => s.spec.name);
  if (skipped.length > 0) ctx.log(`resurrect: ${skipped.join(', ')} were saved stopped and are not started`);
  ctx.log(`resurrected ${out.filter((o) => o.ok).length} of ${wanted.length} service(s) from ${ctx.home.dump}`);
  return out;
}

/** Empties the log files (current and rotated) of the services named, or of all. */
function flush(args: Record<string, unknown>, ctx: DaemonContext): string[] {
  const { target } = parse(flushArgs, args, 'flush');
  const names = target === undefined ? [...ctx.specs.keys()] : resolveTargets([target], known(ctx.manager, ctx.specs));
  const flushed: string[] = [];
  for (const n of names) {
    const spec = ctx.specs.get(n) ?? ctx.specs.get(ctx.manager.statusAll(n)[0]?.service ?? '');
    const logs = spec?.logs;
    if (!spec || !logs || typeof logs === 'string') continue;
    for (const u of ctx.manager.statusAll(n)) {
      for (const st of ['stdout', 'stderr'] as const) {
        const file = logFile(logs.dir, u.name, st);
        try {
          // Truncated in place: the daemon appends (O_APPEND), so its next line lands at the new start.
          truncateSync(file, 0);
        } catch {
          // never written
        }
        const rotated = new RegExp(`^${escape(`${u.name}.${st}.log`)}\\.\\d+$`);
        for (const f of safeList(logs.dir)) if (rotated.test(f)) rmSync(join(logs.dir, f), { force: true });
      }
      flushed.push(u.name);
    }
  }
  ctx.log(`flushed the logs of ${flushed.join(', ') || 'nothing'}`);
  return flushed;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function ping(_args: Record<string, unknown>, ctx: DaemonContext): { version: string; pid: number; home: string; startedAt: number; services: number } {
  return { version: ctx.version, pid: ctx.pid, home: ctx.home.dir, startedAt: ctx.startedAt, services: ctx.manager.statusAll().length };
}

/** Stops every service, dependents first (recorded as stopped: a new daemon does not start them, resurrect does), then ends. */
async function kill(_args: Record<string, unknown>, ctx: DaemonContext): Promise<{ stopped: number; pid: number }> {
  const n = ctx.manager.statusAll().length;
  await ctx.manager.stopAll('*');
  ctx.log(`kill-daemon: stopped ${n} service(s), dependents first; exiting`);
  ctx.exit();
  return { stopped: n, pid: ctx.pid };
}

export const handlers: Record<string, Handler> = {
  ping,
  start,
  stop,
  restart,
  reload,
  delete: remove,
  ps,
  save,
  resurrect,
  flush,
  kill,
};
