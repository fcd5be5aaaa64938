import { isAbsolute } from 'node:path';
import { ManagedProcess, type RestartPolicy } from '@libipc/process';
import { InvalidArgumentError, MAX_TIMER_MS, option, parseOptions, validateName } from '@libipc/shm';
import { z } from 'zod';
import { checkCron } from './cron-schedule.js';

/**
 * When a starting service counts as running: 'none' at spawn; 'ready' when it writes READY to
 * LIBIPC_READY_FD; { registry } when it (or a descendant) registers that name in a @libipc/registry domain;
 * { tcp } when 127.0.0.1/localhost accepts connections on the port; { http } when the URL answers 2xx/3xx.
 */
export type Readiness = 'none' | 'ready' | { registry: string; domain?: string } | { tcp: number } | { http: string };

/** Restart on a change under `paths` (absolute; files or folders, recursively), except under `ignore` globs; after `debounceMs` of quiet. */
export interface WatchSpec {
  paths: string[];
  ignore?: string[];
  debounceMs?: number;
}

/** stdout and stderr to rotated files in `dir`, to this process's terminal, or nowhere. */
export type LogsSpec = { dir: string; maxBytes?: number; keep?: number } | 'inherit' | 'ignore';

export interface ServiceSpec {
  name: string;
  command: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** startN: instances name.0 … name.N-1. */
  instances?: number;
  /** @libipc/process's restart policy, unchanged. */
  restart?: RestartPolicy;
  /** The restart contract: unplanned restarts over the service's life; one more and it stays 'failed'. */
  restartLimit?: number;
  dependsOn?: string[];
  readiness?: Readiness;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
  logs?: LogsSpec;
  /** Bytes: RSS above it for longer than memoryGraceMs → graceful restart (trigger 'memory'). */
  maxMemory?: number;
  /** How long RSS may stay above maxMemory before the restart (default 3000). */
  memoryGraceMs?: number;
  /** A cron expression (5 fields, or 6 with seconds first): graceful restart of each running instance at each fire (trigger 'cron'). */
  cronRestart?: string;
  /** Restart on file changes (trigger 'watch'). */
  watch?: WatchSpec;
  /**
   * TCP ports the instances share: the manager opens each once (one accept queue, owned by the manager) and
   * hands it to every instance as fd 4, 5, … with LIBIPC_LISTEN_FDS="port:fd,…"; a Node app's listen(port)
   * picks it up unchanged (a preload). Nothing queued is lost while an instance stops (reload()).
   */
  listen?: number[];
}

export const DEFAULT_START_TIMEOUT_MS = 10_000;
export const DEFAULT_STOP_TIMEOUT_MS = 3_000;
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_KEEP = 5;
export const MAX_INSTANCES = 10_000;
export const DEFAULT_MEMORY_GRACE_MS = 3000;
export const DEFAULT_WATCH_DEBOUNCE_MS = 500;
/** Below this a service could not even start Node: surely a unit mistake (MiB for bytes). */
export const MIN_MAX_MEMORY = 1024 * 1024;
export const MAX_LISTEN_PORTS = 64;

export interface FileLogs {
  dir: string;
  maxBytes: number;
  keep: number;
}

/** A spec with every default filled in. */
export interface ResolvedSpec {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  instances?: number;
  restart?: RestartPolicy;
  restartLimit?: number;
  dependsOn: string[];
  readiness: Readiness;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  logs: FileLogs | 'inherit' | 'ignore';
  maxMemory?: number;
  memoryGraceMs: number;
  cronRestart?: string;
  watch?: { paths: string[]; ignore: string[]; debounceMs: number };
  listen: number[];
}

const ENV_KEY = /^[^=\0]+$/;
const NO_NUL = (s: string) => !s.includes('\0');

const readinessSchema = z
  .union([
    z.literal('none'),
    z.literal('ready'),
    z.strictObject({ registry: z.string(), domain: z.string().nullish() }),
    z.strictObject({ tcp: z.number().int().min(1).max(65_535) }),
    z.strictObject({ http: z.string().regex(/^https?:\/\/[^\s]+$/) }),
  ])
  .describe("'none', 'ready', { registry: name, domain? }, { tcp: port } or { http: 'http://…' }");

const logsSchema = z
  .union([
    z.literal('inherit'),
    z.literal('ignore'),
    z.strictObject({
      dir: z.string().min(1).max(4096).refine(NO_NUL),
      maxBytes: z.number().int().min(1024).max(2 ** 40).nullish(),
      keep: z.number().int().min(0).max(1000).nullish(),
    }),
  ])
  .describe("{ dir, maxBytes? (1024 to 2^40), keep? (0 to 1000) }, 'inherit' or 'ignore'");

const PATH = z.string().min(1).max(4096).refine(NO_NUL);
const watchSchema = z
  .strictObject({
    paths: z.array(PATH.refine((p) => isAbsolute(p))).min(1).max(1024),
    ignore: z.array(z.string().min(1).max(4096)).max(1024).nullish(),
    debounceMs: z.number().min(0).max(MAX_TIMER_MS).nullish(),
  })
  .describe('{ paths: absolute paths (at least one), ignore?: globs, debounceMs? }');

const SPEC_SHAPE = {
  name: z.unknown(),
  command: z.string().min(1).max(4096).refine(NO_NUL).describe('a non-empty string (the executable, searched on PATH)'),
  args: z.array(z.string().max(128 * 1024).refine(NO_NUL)).max(4096).describe('an array of strings'),
  env: z.record(z.string().regex(ENV_KEY), z.string().refine(NO_NUL)).describe('an object of strings (names without = or NUL)'),
  cwd: z.string().min(1).max(4096).refine(NO_NUL).describe('a non-empty path'),
  instances: option.int(1, MAX_INSTANCES),
  restart: z.unknown(),
  restartLimit: option.int(0, 1_000_000_000),
  dependsOn: z.array(z.unknown()).max(1024).describe('an array of service names'),
  readiness: readinessSchema,
  startTimeoutMs: option.ms(1, MAX_TIMER_MS),
  stopTimeoutMs: option.ms(0, MAX_TIMER_MS),
  logs: logsSchema,
  maxMemory: option.int(MIN_MAX_MEMORY, Number.MAX_SAFE_INTEGER).describe(`a number of bytes, at least ${MIN_MAX_MEMORY} (1 MiB)`),
  memoryGraceMs: option.ms(0, MAX_TIMER_MS),
  cronRestart: option.string(256).describe("a cron expression string, e.g. '0 3 * * *' (or 6 fields with seconds first)"),
  watch: watchSchema,
  listen: z
    .array(z.number().int().min(1).max(65_535))
    .min(1)
    .max(MAX_LISTEN_PORTS)
    .describe(`an array of 1 to ${MAX_LISTEN_PORTS} TCP ports (whole numbers from 1 to 65535)`),
};

/**
 * Checks a ServiceSpec and returns a clean copy of it (plain JSON data: null and undefined fields dropped).
 * Bad names → ERR_LIBIPC_INVALID_NAME; anything else → ERR_LIBIPC_INVALID_ARGUMENT naming the field.
 */
export function validateSpec(value: unknown, what = 'ServiceSpec'): ServiceSpec {
  const name = (value as { name?: unknown } | null | undefined)?.name;
  const label = typeof name === 'string' ? `${what} '${name.slice(0, 63)}'` : what;
  const p = parseOptions(value, SPEC_SHAPE, label);
  if (p.name === undefined) throw new InvalidArgumentError(`${label}: name is required`);
  validateName(p.name, 'service name');
  if (p.command === undefined) throw new InvalidArgumentError(`${label}: command is required (a non-empty string)`);
  const spec: ServiceSpec = { name: p.name, command: p.command };
  if (p.args !== undefined) spec.args = [...p.args];
  if (p.env !== undefined) spec.env = { ...p.env };
  if (p.cwd !== undefined) spec.cwd = p.cwd;
  if (p.instances !== undefined) {
    spec.instances = p.instances;
    validateName(`${p.name}.${p.instances - 1}`, `instance name of ${p.name}`);
  }
  if (p.restart !== undefined) spec.restart = validateRestart(p.restart, label);
  if (p.restartLimit !== undefined) spec.restartLimit = p.restartLimit;
  if (p.dependsOn !== undefined) {
    const deps: string[] = [];
    for (const d of p.dependsOn) {
      validateName(d, `dependsOn entry of ${p.name}`);
      if (!deps.includes(d)) deps.push(d);
    }
    spec.dependsOn = deps;
  }
  if (p.readiness !== undefined) {
    const r = p.readiness;
    if (typeof r === 'object' && 'registry' in r) {
      validateName(r.registry, 'readiness.registry');
      if (r.domain !== undefined && r.domain !== null) validateName(r.domain, 'readiness.domain');
      spec.readiness = r.domain == null ? { registry: r.registry } : { registry: r.registry, domain: r.domain };
    } else {
      spec.readiness = typeof r === 'object' ? { ...r } : r;
    }
  }
  if (p.startTimeoutMs !== undefined) spec.startTimeoutMs = p.startTimeoutMs;
  if (p.stopTimeoutMs !== undefined) spec.stopTimeoutMs = p.stopTimeoutMs;
  if (p.logs !== undefined) {
    const l = p.logs;
    if (typeof l === 'string') spec.logs = l;
    else {
      spec.logs = { dir: l.dir };
      if (l.maxBytes != null) spec.logs.maxBytes = l.maxBytes;
      if (l.keep != null) spec.logs.keep = l.keep;
    }
  }
  if (p.maxMemory !== undefined) spec.maxMemory = p.maxMemory;
  if (p.memoryGraceMs !== undefined) spec.memoryGraceMs = p.memoryGraceMs;
  if (p.cronRestart !== undefined) {
    checkCron(p.cronRestart, `${label}: cronRestart`);
    spec.cronRestart = p.cronRestart;
  }
  if (p.watch !== undefined) {
    const w = p.watch;
    spec.watch = { paths: [...new Set(w.paths)] };
    if (w.ignore != null) spec.watch.ignore = [...w.ignore];
    if (w.debounceMs != null) spec.watch.debounceMs = w.debounceMs;
  }
  if (p.listen !== undefined) spec.listen = [...new Set(p.listen)];
  return spec;
}

/** The restart policy is @libipc/process's: let ManagedProcess judge it (nothing is spawned). */
function validateRestart(restart: unknown, label: string): RestartPolicy {
  let copy: RestartPolicy;
  try {
    copy = JSON.parse(JSON.stringify(restart)) as RestartPolicy;
  } catch {
    throw new InvalidArgumentError(`${label}: restart must be plain data ({ policy, backoff?, … })`);
  }
  try {
    new ManagedProcess({ name: 'check', command: 'check', restart: copy });
  } catch (err) {
    throw new InvalidArgumentError(`${label}: ${(err as Error).message}`);
  }
  return copy;
}

export function resolveSpec(spec: ServiceSpec): ResolvedSpec {
  const logs = spec.logs ?? 'inherit';
  return {
    name: spec.name,
    command: spec.command,
    args: spec.args ?? [],
    env: spec.env ?? {},
    cwd: spec.cwd,
    instances: spec.instances,
    restart: spec.restart,
    restartLimit: spec.restartLimit,
    dependsOn: spec.dependsOn ?? [],
    readiness: spec.readiness ?? 'none',
    startTimeoutMs: spec.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    stopTimeoutMs: spec.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
    logs:
      typeof logs === 'string'
        ? logs
        : { dir: logs.dir, maxBytes: logs.maxBytes ?? DEFAULT_LOG_MAX_BYTES, keep: logs.keep ?? DEFAULT_LOG_KEEP },
    maxMemory: spec.maxMemory,
    memoryGraceMs: spec.memoryGraceMs ?? DEFAULT_MEMORY_GRACE_MS,
    cronRestart: spec.cronRestart,
    watch: spec.watch && { paths: spec.watch.paths, ignore: spec.watch.ignore ?? [], debounceMs: spec.watch.debounceMs ?? DEFAULT_WATCH_DEBOUNCE_MS },
    listen: spec.listen ?? [],
  };
}

/** The names a spec runs as: the name itself, or name.0 … name.N-1 with `instances`. */
export function instanceNames(spec: ServiceSpec): string[] {
  if (spec.instances === undefined) return [spec.name];
  return Array.from({ length: spec.instances }, (_, i) => `${spec.name}.${i}`);
}

/** Stable JSON of a spec, to tell whether it changed. */
export function specKey(spec: ServiceSpec): string {
  return JSON.stringify(spec, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}
