// PM2 ecosystem files: recognising one, reading a JavaScript one, and turning its apps into the native form.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { basename, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.js';
import { type Pm2App, Pm2FieldError, mapPm2Apps } from './pm2-map.js';

/** `.js`, `.cjs`, `.mjs`: a config file that is code; only PM2 ecosystem files are written that way. */
export const isJavaScriptConfig = (file: string): boolean => /\.(c|m)?js$/i.test(file);

/** A parsed YAML/JSON config in PM2's shape: `apps:` (and no `services:`), a list of apps, or an ecosystem.* file. */
export function isPm2Config(data: unknown, file: string): boolean {
  if (Array.isArray(data)) return true;
  if (data === null || typeof data !== 'object') return false;
  if ('services' in data) return false;
  return 'apps' in data || /^ecosystem\b/i.test(basename(file));
}

/** Runs a JavaScript ecosystem file (CommonJS or ESM, as PM2 does) and returns what it exports. */
export async function importEcosystem(file: string, shown: string): Promise<unknown> {
  try {
    if (!statSync(file).isFile()) throw new ConfigError(shown, undefined, undefined, 'is not a file; give the path of an ecosystem file');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(shown, undefined, undefined, `cannot read the config file (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message})`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(shown, undefined, undefined, `the ecosystem file failed when run: ${(err as Error).message.split('\n')[0]}`);
  }
  // CommonJS module.exports and ESM `export default` both arrive as `default`; `export const apps` as is.
  return mod.default ?? mod;
}

/** Where the preload for `wait_ready` apps lives: beside this bundle in dist/. */
export function readyPreloadPath(): string {
  return fileURLToPath(new URL('./pm2-ready.cjs', import.meta.url));
}

/**
 * An ecosystem's exports (or parsed YAML/JSON) → a native config object and its warnings: one line naming the
 * PM2 fields that have no equivalent (each once), one naming apps renamed. Throws ConfigError for what cannot be mapped.
 */
export function pm2ToNative(data: unknown, ctx: { file: string; shown: string; environment?: string }): { data: Record<string, unknown>; warnings: string[] } {
  const top = Array.isArray(data) ? { apps: data } : (data as Record<string, unknown> | null);
  const apps = top === null || typeof top !== 'object' ? undefined : Array.isArray(top.apps) ? top.apps : top.apps !== null && typeof top.apps === 'object' ? [top.apps] : undefined;
  if (apps === undefined || apps.length === 0) {
    throw new ConfigError(ctx.shown, undefined, 'apps', "a PM2 ecosystem file needs apps: a list of apps, each with a script (module.exports = { apps: [{ name, script }] })");
  }
  const bad = apps.findIndex((a) => a === null || typeof a !== 'object' || Array.isArray(a));
  if (bad >= 0) throw new ConfigError(ctx.shown, undefined, `apps[${bad}]`, 'must be an object with a script');
  const base = resolve(ctx.file, '..');
  try {
    const mapped = mapPm2Apps(apps as Pm2App[], {
      cpus: cpus().length,
      probe: (p) => probe(isAbsolute(p) ? p : resolve(base, p)),
      readyPreload: readyPreloadPath(),
      environment: ctx.environment,
      home: homedir(),
    });
    // Top-level fields besides apps (deploy, …) have no equivalent either.
    const ignored = [...Object.keys(top!).filter((k) => k !== 'apps'), ...mapped.ignored];
    const warnings = [
      ...(ignored.length === 0 ? [] : [`${ctx.shown}: PM2 fields with no libipc equivalent, ignored: ${ignored.join(', ')}`]),
      ...(mapped.renamed.length === 0 ? [] : [`${ctx.shown}: app names are [A-Za-z0-9._-] here: ${mapped.renamed.join(', ')}`]),
    ];
    return { data: { services: mapped.services }, warnings };
  } catch (err) {
    if (err instanceof Pm2FieldError) throw new ConfigError(ctx.shown, undefined, err.field, err.message);
    throw err;
  }
}

/** What a script is, as PM2 decides its interpreter: `#!` first, text, binary, or no such file here. */
function probe(path: string): 'shebang' | 'text' | 'binary' | 'missing' {
  let fd: number;
  try {
    if (!statSync(path).isFile()) return 'missing';
    fd = openSync(path, 'r');
  } catch {
    return 'missing';
  }
  try {
    const buf = Buffer.alloc(512);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const head = buf.subarray(0, n);
    if (head[0] === 0x23 && head[1] === 0x21) return 'shebang';
    return head.includes(0) ? 'binary' : 'text';
  } finally {
    closeSync(fd);
  }
}
