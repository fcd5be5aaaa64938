// Pure: what `libipc start <target> …` means — a config file, a Node script or a command — as supervisor specs.
import { basename, extname, isAbsolute, resolve } from 'node:path';
import type { ServiceSpec } from '@libipc/supervisor';
import { UsageError } from '../errors.js';

export interface StartArgs {
  target: string;
  /** After `--`: the script's or command's arguments. */
  args: string[];
  name?: string;
  instances?: number;
  /** --env values: `K=V` (a variable of a script or command) or a name (a config file's `env_<name>` blocks). */
  env: string[];
}

export interface StartContext {
  cwd: string;
  /** True when `path` is an existing regular file. */
  isFile(path: string): boolean;
  /** The Node that runs scripts (the one that runs libipc). */
  node: string;
  /** Where the daemon's services log (`libipc logs` reads them there). */
  logsDir: string;
}

export type StartPlan = { kind: 'config'; file: string; environment?: string } | { kind: 'service'; spec: ServiceSpec };

const CONFIG = new Set(['.yaml', '.yml', '.json']);
const SCRIPT = new Set(['.js', '.mjs', '.cjs']);
/** PM2's rule for a JavaScript config file: `*.config.js` (.cjs, .mjs), and ours: `ecosystem*.js`. */
const ECOSYSTEM = /(\.config\.(c|m)?js|^ecosystem[^/]*\.(c|m)?js)$/i;

/** K=V strings → an env object; a string without `=` or with a bad key is a usage error. */
export function parseEnv(pairs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? '' : p.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new UsageError(`--env takes KEY=VALUE (KEY of letters, digits and _) for a script or command, got '${p}'; a name (--env production) picks the env_<name> blocks of a config file`);
    }
    env[key] = p.slice(eq + 1);
  }
  return env;
}

/** A service name from a file or command name: `app.js` → `app`, `/usr/bin/sleep` → `sleep`. */
export function defaultName(target: string): string {
  const base = basename(target);
  const stem = SCRIPT.has(extname(base)) ? base.slice(0, -extname(base).length) : base;
  const clean = stem.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[.-]+/, '').slice(0, 63);
  return clean.length > 0 ? clean : 'service';
}

/** What a start command line asks for (the config file is loaded by the caller). */
export function planStart(a: StartArgs, ctx: StartContext): StartPlan {
  if (a.target.length === 0) throw new UsageError('start needs a config file, a script or a command');
  const path = isAbsolute(a.target) ? a.target : resolve(ctx.cwd, a.target);
  const ext = extname(a.target).toLowerCase();
  if ((CONFIG.has(ext) || ECOSYSTEM.test(basename(a.target))) && ctx.isFile(path)) {
    const vars = a.env.filter((e) => e.includes('='));
    const extra = [a.name !== undefined && '--name', a.instances !== undefined && '-i', vars.length > 0 && `--env ${vars[0]}`, a.args.length > 0 && 'arguments after --'].filter(Boolean);
    if (extra.length > 0) throw new UsageError(`${extra.join(', ')} apply to a script or a command; a config file sets name, instances and env per service (--env <name> picks its env_<name> blocks)`);
    if (a.env.length > 1) throw new UsageError(`--env names one environment, got ${a.env.join(', ')}`);
    return a.env.length === 1 ? { kind: 'config', file: path, environment: a.env[0]! } : { kind: 'config', file: path };
  }
  const env = parseEnv(a.env);
  let command: string;
  let args: string[];
  if (SCRIPT.has(ext)) {
    if (!ctx.isFile(path)) throw new UsageError(`there is no script ${path}; give an existing .js, .mjs or .cjs file, or a command`);
    command = ctx.node;
    args = [path, ...a.args];
  } else {
    // A path with a slash is that file (from here); a bare word is looked up on PATH by the daemon.
    command = a.target.includes('/') ? path : a.target;
    args = [...a.args];
  }
  const name = a.name ?? defaultName(a.target);
  if (!/^[A-Za-z0-9._-]{1,63}$/.test(name)) throw new UsageError(`--name must be 1-63 characters from [A-Za-z0-9._-], got '${name}'`);
  const spec: ServiceSpec = { name, command, cwd: ctx.cwd, logs: { dir: ctx.logsDir } };
  if (args.length > 0) spec.args = args;
  if (Object.keys(env).length > 0) spec.env = env;
  if (a.instances !== undefined) spec.instances = a.instances;
  return { kind: 'service', spec };
}
