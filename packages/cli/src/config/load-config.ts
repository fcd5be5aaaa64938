import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import type { ServiceSpec } from '@libipc/supervisor';
import { type Document, LineCounter, isMap, isPair, isScalar, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { selectEnvironment, unknownEnvironment } from './environments.js';
import { importEcosystem, isJavaScriptConfig, isPm2Config, pm2ToNative } from './pm2-ecosystem.js';
import { type FileConfig, type ServiceConfig, configSchema, serviceSchema } from './schema.js';
import { toSpecs } from './to-specs.js';

/** A config file, checked and turned into supervisor specs (dependencies before their dependents). */
export interface RunConfig {
  /** Absolute path of the file. */
  file: string;
  specs: ServiceSpec[];
  /** Global environment of every service. */
  env: Record<string, string>;
  /** The names of the file's `env_<name>` blocks (what `--env` takes). */
  environments: string[];
  /** Things ignored on the way, one line each (a PM2 ecosystem file's fields without an equivalent). */
  warnings: string[];
}

export interface LoadConfigOptions {
  /** Relative paths are from here (default: process.cwd()). */
  cwd?: string;
  /** Where services without a `logs` field write their output. */
  defaultLogs?: string;
  /** `--env <name>`: the `env_<name>` blocks merged over `env` (top level, then each service's). */
  environment?: string;
}

/** Config files larger than this are refused before they are parsed (a config is a few KiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

type Path = ReadonlyArray<PropertyKey>;
type Where = (p: Path) => number | undefined;

/**
 * Reads and checks a `libipc run` config file (YAML, or JSON, which YAML reads too; a PM2 ecosystem file in YAML
 * or JSON is mapped first). Every problem is a ConfigError whose one-line message names the file, the line and
 * the field: `libipc.yaml:7: services.api.instances: …`. A JavaScript ecosystem file needs `loadConfigFile`.
 */
export function loadConfig(path: string, opts: LoadConfigOptions = {}): RunConfig {
  const { file, shown } = located(path, opts);
  if (isJavaScriptConfig(file)) {
    throw new ConfigError(shown, undefined, undefined, 'is a JavaScript file (a PM2 ecosystem file): load it with loadConfigFile(), which runs it, or convert it once with \'libipc convert\'');
  }
  if (/\.(c|m)?ts$/i.test(file)) throw new ConfigError(shown, undefined, undefined, 'is a TypeScript file: give a YAML or JSON config, or a JavaScript PM2 ecosystem file (.js, .cjs, .mjs)');
  const { doc, lines, data } = parseFile(file, shown);
  if (isPm2Config(data, file)) return fromPm2(data, file, shown, opts).config;
  const where = (p: Path) => lineOf(doc, lines, p);
  const whereKey = (p: Path, key: string) => keyLine(doc, lines, p, key) ?? where([...p, key]);
  return checkConfig(data, { file, shown, where, whereKey, opts, warnings: [] });
}

/** A YAML/JSON file read and parsed (a syntax error or an empty file is a ConfigError with its line). */
function parseFile(file: string, shown: string): { doc: Document; lines: LineCounter; data: unknown } {
  const text = readText(file, shown);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const at = syntax.linePos?.[0]?.line ?? lines.linePos(syntax.pos[0]).line;
    throw new ConfigError(shown, at, undefined, `${extname(file) === '.json' ? 'JSON' : 'YAML'} syntax: ${syntax.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (data === null || data === undefined) throw new ConfigError(shown, 1, undefined, 'the file is empty; it needs a services: section');
  return { doc, lines, data };
}

/**
 * A PM2 ecosystem file in the native form, as `libipc convert` prints it (`env_<name>` blocks kept, paths as
 * written: relative to the ecosystem file's folder), after checking it loads as `libipc run` would load it.
 */
export async function convertEcosystem(path: string, opts: LoadConfigOptions = {}): Promise<{ data: Record<string, unknown>; warnings: string[] }> {
  const { file, shown } = located(path, opts);
  const raw = isJavaScriptConfig(file) ? await importEcosystem(file, shown) : parseFile(file, shown).data;
  if (!isJavaScriptConfig(file) && !isPm2Config(raw, file)) {
    throw new ConfigError(shown, undefined, undefined, 'is not a PM2 ecosystem file (it has no apps:); it is already in the native form, run it as it is');
  }
  const { config, native } = fromPm2(raw, file, shown, opts);
  return { data: native, warnings: config.warnings };
}

/** `loadConfig` for every kind of config file, a JavaScript ecosystem file (`ecosystem.config.js`, .cjs, .mjs) too. */
export async function loadConfigFile(path: string, opts: LoadConfigOptions = {}): Promise<RunConfig> {
  const { file, shown } = located(path, opts);
  if (!isJavaScriptConfig(file)) return loadConfig(path, opts);
  return fromPm2(await importEcosystem(file, shown), file, shown, opts).config;
}

/**
 * The specs as the daemon takes them: the file's global env folded into each service's (the daemon's Manager
 * serves many files). `libipc start` and `libipc reload --env` send these.
 */
export function daemonSpecs(config: RunConfig): ServiceSpec[] {
  return Object.keys(config.env).length === 0 ? config.specs : config.specs.map((s) => ({ ...s, env: { ...config.env, ...s.env } }));
}

/**
 * For `libipc reload <config file> --env <name>` (and `start`): the file's services with that environment
 * merged, as the daemon takes them, and the warnings to print. An unknown name is a ConfigError listing the names.
 */
export async function specsForEnvironment(path: string, environment: string | undefined, opts: Omit<LoadConfigOptions, 'environment'> = {}): Promise<{ specs: ServiceSpec[]; warnings: string[] }> {
  const config = await loadConfigFile(path, environment === undefined ? opts : { ...opts, environment });
  return { specs: daemonSpecs(config), warnings: config.warnings };
}

function located(path: string, opts: LoadConfigOptions): { file: string; shown: string } {
  const cwd = opts.cwd ?? process.cwd();
  const file = resolve(cwd, path);
  const rel = relative(cwd, file);
  return { file, shown: rel.startsWith('..') ? file : rel || file };
}

/** A PM2 ecosystem (its exports or parsed YAML/JSON): mapped (`native`), then checked as any config (no line numbers: the fields are ours). */
function fromPm2(data: unknown, file: string, shown: string, opts: LoadConfigOptions): { config: RunConfig; native: Record<string, unknown> } {
  const mapped = pm2ToNative(data, { file, shown, environment: opts.environment });
  const none = () => undefined;
  try {
    return { config: checkConfig(mapped.data, { file, shown, where: none, whereKey: none, opts, warnings: mapped.warnings }), native: mapped.data };
  } catch (err) {
    // The field named is libipc's, not one the user wrote: say where it comes from.
    if (err instanceof ConfigError && err.field?.startsWith('services')) err.message += ` (in the libipc form of the PM2 apps, which 'libipc convert ${shown}' prints)`;
    throw err;
  }
}

interface Checking {
  file: string;
  shown: string;
  where: Where;
  whereKey: (p: Path, key: string) => number | undefined;
  opts: LoadConfigOptions;
  warnings: string[];
}

/** Raw config data → RunConfig: environments chosen, the schema checked, services turned into specs. */
function checkConfig(raw: unknown, c: Checking): RunConfig {
  const { shown, where, whereKey } = c;
  const envs = selectEnvironment(raw, c.opts.environment);
  for (const b of envs.blocks) {
    if (!ENV_RECORD.safeParse(b.value).success) {
      throw new ConfigError(shown, where(b.path), fieldName(b.path, raw), 'must be a map of NAME: value (strings, numbers or booleans), as env is');
    }
  }
  if (envs.unknown) throw new ConfigError(shown, undefined, undefined, unknownEnvironment(c.opts.environment!, envs.names));
  const data = envs.data;
  const top = configSchema.safeParse(data);
  if (!top.success) throw issueError(shown, top.error, data, where, whereKey);
  const config: FileConfig = top.data;
  const base = dirname(c.file);
  const services = normalise(config, shown, where);
  return {
    file: c.file,
    specs: toSpecs(services, { base, file: shown, where, logs: config.logs, defaultLogs: c.opts.defaultLogs }),
    env: config.env ?? {},
    environments: envs.names,
    warnings: c.warnings,
  };
}

const ENV_RECORD = serviceSchema.shape.env.unwrap();

function readText(file: string, shown: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const what = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a folder' : e.message;
    throw new ConfigError(shown, undefined, undefined, `cannot read the config file (${what}); give the path of a YAML or JSON file`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new ConfigError(shown, undefined, undefined, 'is a folder; give the path of a YAML or JSON file');
    if (st.size > MAX_CONFIG_BYTES) {
      throw new ConfigError(shown, undefined, undefined, `is ${st.size} bytes, more than a config may be (${MAX_CONFIG_BYTES}); is it the right file?`);
    }
    // Read at most the limit (plus one byte to notice a file that grows): a FIFO or /dev/zero cannot hang us.
    const buf = Buffer.alloc(Math.min(MAX_CONFIG_BYTES + 1, Math.max(st.size + 1, 64 * 1024)));
    let len = 0;
    for (;;) {
      if (len === buf.length) break;
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    if (len > MAX_CONFIG_BYTES) throw new ConfigError(shown, undefined, undefined, `is larger than a config may be (${MAX_CONFIG_BYTES} bytes)`);
    if (buf.subarray(0, len).includes(0)) throw new ConfigError(shown, undefined, undefined, 'is not text (it contains NUL bytes); give a YAML or JSON file');
    return buf.toString('utf8', 0, len);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(shown, undefined, undefined, `cannot read the config file (${(err as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/** Services as a list with names, whichever form the file used; each checked, with its place for errors. */
function normalise(config: FileConfig, shown: string, where: (p: Path) => number | undefined): Array<{ svc: ServiceConfig; path: Path }> {
  const out: Array<{ svc: ServiceConfig; path: Path }> = [];
  if (Array.isArray(config.services)) {
    config.services.forEach((svc, i) => {
      if (svc.name === undefined) throw new ConfigError(shown, where(['services', i]), `services[${i}]`, 'name is required in a list of services');
      out.push({ svc, path: ['services', i] });
    });
  } else {
    for (const [key, svc] of Object.entries(config.services)) {
      if (!/^[A-Za-z0-9._-]{1,63}$/.test(key)) {
        throw new ConfigError(shown, where(['services', key]), `services.${key}`, 'a service name must be 1-63 characters from [A-Za-z0-9._-]');
      }
      if (svc.name !== undefined && svc.name !== key) {
        throw new ConfigError(shown, where(['services', key, 'name']), `services.${key}.name`, `'${svc.name}' differs from its key '${key}'; drop one of them`);
      }
      out.push({ svc: { ...svc, name: key }, path: ['services', key] });
    }
  }
  if (out.length === 0) throw new ConfigError(shown, where(['services']), 'services', 'there are no services to run');
  return out;
}

/** The line (1-based) of the node at `path`, or of its closest ancestor that exists. */
export function lineOf(doc: Document, lines: LineCounter, path: Path): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    const node = n === 0 ? doc.contents : doc.getIn(sub as unknown[], true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return lines.linePos(range[0]).line;
  }
  return undefined;
}

/** The line of a key (for an unknown field): the key itself, not its value. */
function keyLine(doc: Document, lines: LineCounter, path: Path, key: string): number | undefined {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path as unknown[], true);
  if (isMap(parent)) {
    for (const pair of parent.items) {
      if (isPair(pair) && isScalar(pair.key) && String(pair.key.value) === key && pair.key.range) return lines.linePos(pair.key.range[0]).line;
    }
  }
  return undefined;
}

/** The most precise issue: inside a union, the branch that matches the value's shape. */
function precise(issue: z.core.$ZodIssue, prefix: PropertyKey[] = []): { issue: z.core.$ZodIssue; path: PropertyKey[] } {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    for (const branch of issue.errors) {
      const first = branch[0];
      // A branch that failed only because the value is of another type is not the one the user meant.
      if (first && !(first.code === 'invalid_type' && first.path.length === 0) && !(first.code === 'invalid_value' && first.path.length === 0)) {
        return precise(first, path);
      }
    }
  }
  return { issue, path };
}

function fieldName(path: Path, data: unknown): string {
  let out = '';
  let cur: unknown = data;
  for (const k of path) {
    if (typeof k === 'number') {
      const named = (cur as unknown[] | undefined)?.[k] as { name?: unknown } | undefined;
      out += typeof named?.name === 'string' && out === 'services' ? `.${named.name}` : `[${k}]`;
    } else {
      out += out === '' ? String(k) : `.${String(k)}`;
    }
    cur = (cur as Record<PropertyKey, unknown> | undefined)?.[k as string];
  }
  return out || 'top level';
}

function issueError(
  shown: string,
  error: z.ZodError,
  data: unknown,
  where: (p: Path) => number | undefined,
  whereKey: (p: Path, key: string) => number | undefined,
): ConfigError {
  // An unknown field first: a misspelt one also makes the field it meant look missing. Then every other problem.
  const flat = error.issues.flatMap((i) => preciseAll(i));
  const ordered = [...flat.filter((i) => i.issue.code === 'unrecognized_keys'), ...flat.filter((i) => i.issue.code !== 'unrecognized_keys')];
  const all = ordered.map((i) => oneIssue(shown, i, data, where, whereKey));
  const messages = [...new Set(all.map((e) => e.message))];
  const first = all[0]!;
  if (messages.length === 1) return first;
  return new ConfigError(first.file, first.line, first.field, `${messages[0]!.slice(`${first.file}${first.line === undefined ? '' : `:${first.line}`}: ${first.field ? `${first.field}: ` : ''}`.length)}; and ${messages.length - 1} more problem(s): ${messages.slice(1).join('; ')}`);
}

/** Every issue, each as precise as `precise` makes it: inside a union, all issues of the branch meant. */
function preciseAll(issue: z.core.$ZodIssue, prefix: PropertyKey[] = []): Array<{ issue: z.core.$ZodIssue; path: PropertyKey[] }> {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    for (const branch of issue.errors) {
      const first = branch[0];
      if (first && !(first.code === 'invalid_type' && first.path.length === 0) && !(first.code === 'invalid_value' && first.path.length === 0)) {
        return branch.flatMap((i) => preciseAll(i, path));
      }
    }
  }
  return [precise(issue, prefix)];
}

function oneIssue(
  shown: string,
  { issue, path }: { issue: z.core.$ZodIssue; path: PropertyKey[] },
  data: unknown,
  where: (p: Path) => number | undefined,
  whereKey: (p: Path, key: string) => number | undefined,
): ConfigError {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const known = knownFields(path);
    return new ConfigError(
      shown,
      whereKey(path, key),
      fieldName([...path, key], data),
      `unknown field '${key}'${known ? `; known fields: ${known}` : ''}`,
    );
  }
  let message = issue.message.replace(/^Invalid input: /, '');
  const at = path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown> | undefined)?.[k as string], data);
  let line = where(path);
  if (at === undefined) {
    message = `is required: it ${message.startsWith('must') ? message : `must be ${message.replace(/^expected /, '')}`}`;
    // A missing field is reported where its object is named (the key of the service, say).
    if (path.length >= 2 && typeof path[path.length - 2] === 'string') line = whereKey(path.slice(0, -2), String(path[path.length - 2]));
  }
  return new ConfigError(shown, line, fieldName(path, data), message);
}

function knownFields(path: Path): string | undefined {
  const last = path[path.length - 1];
  if (path.length === 0) return 'services, env, env_<name>, logs';
  if (path[0] === 'services' && path.length === 2) {
    return 'name, command, args, env, env_<name>, cwd, instances, restart, restartLimit, dependsOn, readiness, startTimeoutMs, stopTimeoutMs, logs';
  }
  if (last === 'restart') return 'policy, backoff, minUptimeMs, maxRestarts, windowMs, stopExitCodes';
  if (last === 'backoff') return 'initialMs, factor, maxMs, jitter';
  if (last === 'logs') return 'dir, maxBytes, keep';
  return undefined;
}

