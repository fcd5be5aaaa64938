// Pure: a PM2 ecosystem file's apps → the native config form of `libipc run` (then checked by the normal loader).
// No I/O here: the file system is asked through `probe`, the CPU count comes in `cpus`.
import { basename, extname, join } from 'node:path';
import { defaultName } from '../daemon/start-args.js';
import { splitArgs } from './split-args.js';

/** A PM2 app object as written in an ecosystem file. */
export type Pm2App = Record<string, unknown>;

/** What the mapping needs to know about the machine and the files. */
export interface Pm2Context {
  /** CPUs of this machine (`instances: 'max'`, 0 and -1 depend on it). */
  cpus: number;
  /** What the script is (path relative to the ecosystem file's folder, or absolute): decides the default interpreter as PM2 does. */
  probe(path: string): 'shebang' | 'text' | 'binary' | 'missing';
  /** The preload that makes `process.send('ready')` write READY to LIBIPC_READY_FD (for `wait_ready`). */
  readyPreload: string;
  /** The environment chosen with --env: its PORT wins for `listen`. */
  environment?: string;
  /** The user's home: `~/` in log paths (PM2 expands it). */
  home?: string;
}

/** One app mapped: the native service (a plain object, as a YAML/JSON config would hold it) and the fields ignored. */
export interface Pm2Mapped {
  service: Record<string, unknown>;
  /** PM2 fields with no libipc equivalent, in the order met. */
  ignored: string[];
  /** The app's name when it is no libipc name (PM2 allows spaces): it runs as service.name. */
  renamed?: string;
}

/** Fields the mapping reads; every other field is reported as ignored. */
export const PM2_MAPPED_FIELDS = [
  'name',
  'script',
  'args',
  'interpreter',
  'exec_interpreter',
  'interpreter_args',
  'node_args',
  'cwd',
  'instances',
  'exec_mode',
  'env',
  'max_memory_restart',
  'cron_restart',
  'watch',
  'ignore_watch',
  'watch_delay',
  'autorestart',
  'max_restarts',
  'min_uptime',
  'restart_delay',
  'exp_backoff_restart_delay',
  'stop_exit_codes',
  'kill_timeout',
  'wait_ready',
  'listen_timeout',
  'out_file',
  'error_file',
] as const;

const MAPPED = new Set<string>(PM2_MAPPED_FIELDS);
/** Interpreters PM2 picks by extension (python3: Debian and most distributions have no `python`). */
const BY_EXTENSION: Record<string, string> = { '.js': 'node', '.mjs': 'node', '.cjs': 'node', '.sh': 'bash', '.py': 'python3', '.rb': 'ruby', '.php': 'php', '.pl': 'perl' };

/** Thrown for a value PM2 itself would refuse; the loader turns it into a ConfigError naming the app. */
export class Pm2FieldError extends Error {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(detail);
  }
}

/** Maps one PM2 app to a native service. Throws Pm2FieldError for a value that cannot be mapped. */
export function mapPm2App(app: Pm2App, ctx: Pm2Context): Pm2Mapped {
  const ignored = Object.keys(app).filter((k) => !MAPPED.has(k) && !/^env_./.test(k));
  const script = app.script;
  if (typeof script !== 'string' || script.length === 0) throw new Pm2FieldError('script', 'is required: the file or command the app runs');
  // PM2 takes any name ('limit worker' in its docs); libipc names are [A-Za-z0-9._-]: the nearest one.
  const renamed = typeof app.name === 'string' && !/^[A-Za-z0-9._-]{1,63}$/.test(app.name) ? app.name : undefined;
  const svc: Record<string, unknown> = { name: app.name === undefined ? defaultName(script) : renamed !== undefined ? defaultName(renamed) : app.name };
  const cwd = app.cwd === undefined ? undefined : str(app.cwd, 'cwd');
  const interpreter = pickInterpreter(app, script, cwd, ctx);
  const node = isNode(interpreter);
  const interpreterArgs = [...argList(app.interpreter_args, 'interpreter_args'), ...(node ? argList(app.node_args, 'node_args') : [])];
  const waitReady = bool(app.wait_ready, 'wait_ready') === true;
  if (interpreter === 'none') {
    // PM2 finds a script relative to the app's cwd; a bare word that is no file there is looked up on PATH.
    const local = !script.startsWith('/') && (script.includes('/') || ctx.probe(cwd === undefined ? script : join(cwd, script)) !== 'missing');
    svc.command = local && cwd !== undefined ? join(cwd, script) : local && !script.includes('/') ? `./${script}` : script;
  } else {
    // PM2 refuses a script it cannot find, rather than starting a crash loop.
    const at = cwd === undefined || script.startsWith('/') ? script : join(cwd, script);
    if (ctx.probe(at) === 'missing') throw new Pm2FieldError('script', `there is no file ${at} (relative to the ecosystem file's folder); check script and cwd`);
    const preload = waitReady && node ? ['--require', ctx.readyPreload] : [];
    svc.command = [interpreter, ...interpreterArgs, ...preload, script];
  }
  const args = argList(app.args, 'args');
  if (args.length > 0) svc.args = args;
  if (app.env !== undefined) svc.env = app.env;
  for (const [k, v] of Object.entries(app)) if (/^env_./.test(k)) svc[k] = v;
  if (cwd !== undefined) svc.cwd = cwd;

  const instances = instanceCount(app.instances, ctx.cpus);
  if (instances > 1) svc.instances = instances;
  const mode = execMode(app, interpreter);
  if (mode === 'cluster') {
    const env = { ...obj(app.env), ...(ctx.environment === undefined ? {} : obj(app[`env_${ctx.environment}`])) };
    const port = env.PORT;
    // Instances of a cluster app share its port: the supervisor opens it once (`listen`).
    if ((typeof port === 'number' || typeof port === 'string') && /^\d{1,5}$/.test(String(port)) && Number(port) >= 1 && Number(port) <= 65_535) svc.listen = Number(port);
  }

  if (app.max_memory_restart !== undefined) svc.maxMemory = memory(app.max_memory_restart);
  if (app.cron_restart !== undefined && app.cron_restart !== 0 && app.cron_restart !== '0') svc.cronRestart = str(app.cron_restart, 'cron_restart');
  const watch = watchOf(app);
  if (watch !== undefined) svc.watch = watch;

  const restart: Record<string, unknown> = { policy: app.autorestart === false ? 'never' : 'always' };
  bool(app.autorestart, 'autorestart');
  if (app.min_uptime !== undefined) restart.minUptimeMs = duration(app.min_uptime, 'min_uptime');
  if (app.exp_backoff_restart_delay !== undefined) {
    const ms = duration(app.exp_backoff_restart_delay, 'exp_backoff_restart_delay');
    // PM2 grows the delay by 1.5 up to 15 s (a first delay above that stays as given).
    restart.backoff = { initialMs: ms, factor: 1.5, maxMs: Math.max(15_000, ms), jitter: 0 };
  } else if (app.restart_delay !== undefined) {
    const ms = duration(app.restart_delay, 'restart_delay');
    restart.backoff = { initialMs: ms, factor: 1, maxMs: ms, jitter: 0 };
  }
  if (app.stop_exit_codes !== undefined) restart.stopExitCodes = Array.isArray(app.stop_exit_codes) ? app.stop_exit_codes : [app.stop_exit_codes];
  // PM2 restarts after any exit, a clean one too: 'always' (libipc's default is 'on-failure').
  svc.restart = Object.keys(restart).length === 1 ? restart.policy : restart;
  if (app.max_restarts !== undefined) svc.restartLimit = app.max_restarts;
  if (app.kill_timeout !== undefined) svc.stopTimeoutMs = duration(app.kill_timeout, 'kill_timeout');
  if (waitReady) svc.readiness = 'ready';
  if (app.listen_timeout !== undefined) svc.startTimeoutMs = duration(app.listen_timeout, 'listen_timeout');
  const logs = logsOf(app, ctx.home);
  if (logs !== undefined) svc.logs = logs;
  return renamed === undefined ? { service: svc, ignored } : { service: svc, ignored, renamed };
}

/** Maps every app; each ignored field is named once, whichever apps have it. */
export function mapPm2Apps(apps: readonly Pm2App[], ctx: Pm2Context): { services: Array<Record<string, unknown>>; ignored: string[]; renamed: string[] } {
  const ignored = new Set<string>();
  const renamed: string[] = [];
  const services = apps.map((app, i) => {
    try {
      const m = mapPm2App(app, ctx);
      for (const f of m.ignored) ignored.add(f);
      if (m.renamed !== undefined) renamed.push(`'${m.renamed}' runs as '${String(m.service.name)}'`);
      return m.service;
    } catch (err) {
      if (err instanceof Pm2FieldError) throw new Pm2FieldError(`apps[${i}]${typeof app.name === 'string' ? ` (${app.name})` : ''}.${err.field}`, err.message);
      throw err;
    }
  });
  return { services, ignored: [...ignored], renamed };
}

/** PM2's default interpreter: by extension; else a text file without `#!` runs with node, anything else directly. */
function pickInterpreter(app: Pm2App, script: string, cwd: string | undefined, ctx: Pm2Context): string {
  const given = app.interpreter ?? app.exec_interpreter;
  if (given !== undefined) {
    const name = str(given, 'interpreter');
    return name === 'nodejs' ? 'node' : name;
  }
  const byExt = BY_EXTENSION[extname(script).toLowerCase()];
  if (byExt !== undefined) return byExt;
  const kind = ctx.probe(cwd === undefined || script.startsWith('/') ? script : join(cwd, script));
  return kind === 'text' ? 'node' : 'none';
}

/** PM2: instances given and a node interpreter mean cluster mode unless exec_mode says otherwise. */
function execMode(app: Pm2App, interpreter: string): 'cluster' | 'fork' {
  if (app.exec_mode !== undefined) {
    const m = str(app.exec_mode, 'exec_mode').replace(/_mode$/, '');
    if (m !== 'cluster' && m !== 'fork') throw new Pm2FieldError('exec_mode', `must be 'fork' or 'cluster', got '${String(app.exec_mode)}'`);
    return m;
  }
  return app.instances !== undefined && isNode(interpreter) ? 'cluster' : 'fork';
}

/** `node`, `/usr/local/bin/node`, `node20`: a Node (node_args, the wait_ready preload and cluster mode apply). */
const isNode = (interpreter: string): boolean => /^node(js)?[\d.]*$/.test(basename(interpreter));

/** 'max' or 0 = one per CPU, -1 = one fewer than the CPUs (at least 1), a number (or numeric string) as is. */
export function instanceCount(value: unknown, cpus: number): number {
  if (value === undefined) return 1;
  const n = value === 'max' ? 0 : typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < -1) throw new Pm2FieldError('instances', `must be a number, 'max', 0 (one per CPU) or -1 (one per CPU but one), got ${JSON.stringify(value)}`);
  if (n === 0) return Math.max(1, cpus);
  if (n === -1) return Math.max(1, cpus - 1);
  return n;
}

/** '300M', '1G', '512K' as the native form takes them; other forms (bytes, '300MB', '1.5G') as a byte count. */
export function memory(value: unknown): string | number {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  const m = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([KMG])?B?\s*$/i.exec(value) : null;
  if (!m) throw new Pm2FieldError('max_memory_restart', `must be bytes or a size like '300M', '1G', '512K', got ${JSON.stringify(value)}`);
  const unit = (m[2] ?? '').toUpperCase();
  if (unit !== '' && /^\d+$/.test(m[1]!) && value === `${m[1]}${unit}`) return value;
  return Math.round(Number(m[1]) * (unit === 'G' ? 2 ** 30 : unit === 'M' ? 2 ** 20 : unit === 'K' ? 1024 : 1));
}

/** Milliseconds: a number, a numeric string, or '10s', '500ms', '2m', '1h' (PM2 reads both). */
export function duration(value: unknown, field: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value);
  const m = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(value) : null;
  if (!m) throw new Pm2FieldError(field, `must be milliseconds or a duration like '10s', '500ms', '2m', got ${JSON.stringify(value)}`);
  const unit = (m[2] ?? 'ms').toLowerCase();
  return Math.round(Number(m[1]) * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1));
}

/** `watch: true | path | paths` with `ignore_watch` and `watch_delay` → the native `watch`. */
function watchOf(app: Pm2App): unknown {
  const w = app.watch;
  if (w === undefined || w === false) return undefined;
  if (w !== true && typeof w !== 'string' && !(Array.isArray(w) && w.every((p) => typeof p === 'string'))) {
    throw new Pm2FieldError('watch', `must be true, a path or a list of paths, got ${JSON.stringify(w)}`);
  }
  const ignore = app.ignore_watch === undefined ? [] : Array.isArray(app.ignore_watch) ? app.ignore_watch.map((p) => str(p, 'ignore_watch')) : [str(app.ignore_watch, 'ignore_watch')];
  if (ignore.length === 0 && app.watch_delay === undefined) return w;
  const out: Record<string, unknown> = {};
  if (w !== true) out.paths = typeof w === 'string' ? [w] : w;
  if (ignore.length > 0) out.ignore = ignore;
  if (app.watch_delay !== undefined) out.debounceMs = duration(app.watch_delay, 'watch_delay');
  return out;
}

/** PM2 names log files; libipc names them per service inside a folder: out_file's folder (else error_file's). */
function logsOf(app: Pm2App, home: string | undefined): unknown {
  const out = app.out_file === undefined ? undefined : str(app.out_file, 'out_file');
  const err = app.error_file === undefined ? undefined : str(app.error_file, 'error_file');
  if (out === undefined && err === undefined) return undefined;
  const discarded = (p: string | undefined) => p === undefined || p === '/dev/null' || p === 'NULL';
  if (discarded(out) && discarded(err)) return 'ignore';
  const written = out !== undefined && !discarded(out) ? out : err!;
  const file = home !== undefined && written.startsWith('~/') ? `${home}${written.slice(1)}` : written;
  const slash = file.lastIndexOf('/');
  return slash < 0 ? '.' : slash === 0 ? '/' : file.slice(0, slash);
}

function argList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return splitArgs(value);
  if (Array.isArray(value) && value.every((a) => typeof a === 'string' || typeof a === 'number')) return value.map(String);
  throw new Pm2FieldError(field, `must be a string or a list of strings, got ${JSON.stringify(value)}`);
}

function str(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new Pm2FieldError(field, `must be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

function bool(value: unknown, field: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new Pm2FieldError(field, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function obj(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
