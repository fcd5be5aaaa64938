import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import type { ServiceSpec } from '@libipc/supervisor';
import { type Document, LineCounter, isMap, isPair, isScalar, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { type FileConfig, type ServiceConfig, configSchema } from './schema.js';
import { toSpecs } from './to-specs.js';

/** A config file, checked and turned into supervisor specs (dependencies before their dependents). */
export interface RunConfig {
  /** Absolute path of the file. */
  file: string;
  specs: ServiceSpec[];
  /** Global environment of every service. */
  env: Record<string, string>;
}

/** Config files larger than this are refused before they are parsed (a config is a few KiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

type Path = ReadonlyArray<PropertyKey>;

/**
 * Reads and checks a `libipc run` config file (YAML, or JSON, which YAML reads too). Every problem is a
 * ConfigError whose one-line message names the file, the line and the field: `libipc.yaml:7: services.api.instances: …`.
 * `defaultLogs` is where services without a `logs` field write their output.
 */
export function loadConfig(path: string, opts: { cwd?: string; defaultLogs?: string } = {}): RunConfig {
  const file = resolve(opts.cwd ?? process.cwd(), path);
  const shown = relative(opts.cwd ?? process.cwd(), file).startsWith('..') ? file : relative(opts.cwd ?? process.cwd(), file) || file;
  if (/\.(c|m)?[jt]s$/.test(file)) {
    throw new ConfigError(shown, undefined, undefined, "is a JavaScript file, not a YAML/JSON config: PM2 ecosystem files are not supported yet; write the services as YAML (.yaml, .yml) or JSON (.json), see 'libipc run --help'");
  }
  const text = readText(file, shown);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const at = syntax.linePos?.[0]?.line ?? lines.linePos(syntax.pos[0]).line;
    throw new ConfigError(shown, at, undefined, `${extname(file) === '.json' ? 'JSON' : 'YAML'} syntax: ${syntax.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  const where = (p: Path) => lineOf(doc, lines, p);
  const whereKey = (p: Path, key: string) => keyLine(doc, lines, p, key) ?? where([...p, key]);
  if (data === null || data === undefined) throw new ConfigError(shown, 1, undefined, 'the file is empty; it needs a services: section');
  const top = configSchema.safeParse(data);
  if (!top.success) throw issueError(shown, top.error, data, where, whereKey);
  const config: FileConfig = top.data;
  const base = dirname(file);
  const services = normalise(config, shown, where);
  return {
    file,
    specs: toSpecs(services, { base, file: shown, where, logs: config.logs, defaultLogs: opts.defaultLogs }),
    env: config.env ?? {},
  };
}

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
  if (path.length === 0) return 'services, env, logs';
  if (path[0] === 'services' && path.length === 2) {
    return 'name, command, args, env, cwd, instances, restart, restartLimit, dependsOn, readiness, startTimeoutMs, stopTimeoutMs, logs';
  }
  if (last === 'restart') return 'policy, backoff, minUptimeMs, maxRestarts, windowMs, stopExitCodes';
  if (last === 'backoff') return 'initialMs, factor, maxMs, jitter';
  if (last === 'logs') return 'dir, maxBytes, keep';
  return undefined;
}

