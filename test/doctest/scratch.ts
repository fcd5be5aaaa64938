// What a user gets from npm, made here: prebuilt binaries, one `pnpm pack` per published package, and one
// project made by `npm init -y` that installs every tarball with plain npm, with no compiler on PATH.
import { type SpawnOptions, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';

export const ROOT = realpathSync(new URL('../..', import.meta.url).pathname);

export interface Pkg {
  name: string;
  /** Absolute folder. */
  dir: string;
  /** Folder relative to the repository root, e.g. packages/shm. */
  rel: string;
  native: boolean;
  json: Record<string, any>;
}

/**
 * Every package under packages/ that is published (not private). With `narrow`, LIBIPC_DOCTEST_ONLY=shm,registry
 * keeps those only (the READMEs to test; every package is still packed and installed).
 */
export function publishedPackages(narrow = false): Pkg[] {
  const only = narrow ? process.env.LIBIPC_DOCTEST_ONLY?.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  return readdirSync(join(ROOT, 'packages'))
    .sort()
    .map((d) => join(ROOT, 'packages', d))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => {
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      return { name: json.name as string, dir, rel: relative(ROOT, dir), native: existsSync(join(dir, 'binding.gyp')), json };
    })
    .filter((p) => !p.json.private)
    .filter((p) => !only || only.some((o) => p.name === o || p.name === `@libipc/${o}`));
}

export interface RunOptions extends SpawnOptions {
  timeoutMs?: number;
}

/** Runs a command; rejects with its output when it fails or outlives timeoutMs. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    }, opts.timeoutMs ?? 300_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd ?? process.cwd()}) failed (${signal ?? `exit ${code}`}):\n${(stdout + stderr).slice(-6000)}`));
    });
  });
}

function which(bin: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, bin);
    try {
      if (statSync(p).isFile()) return realpathSync(p);
    } catch {}
  }
  throw new Error(`${bin} is not on PATH`);
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** A hash of every native source of every native package (typed-channel compiles shm's headers too). */
function nativeSourcesHash(pkgs: Pkg[]): string {
  const h = createHash('sha256');
  for (const p of pkgs.filter((x) => x.native)) {
    const files = [join(p.dir, 'binding.gyp'), ...walk(join(p.dir, 'src')).filter((f) => /\.(cc|c|cpp|h|hpp)$/.test(f)), ...walk(join(p.dir, 'include'))];
    for (const f of files.sort()) h.update(relative(ROOT, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex');
}

const platformDir = `${process.platform}-${process.arch}`;

/**
 * Makes sure prebuilds/<platform>-<arch>/ of every native package holds a binary of the current sources. The
 * package's own `prebuildify` script runs in a copy of the package, so the workspace's build/ (which the other
 * tests load) is never removed under them; only the finished binaries are moved into the package.
 */
export async function ensurePrebuilds(all: Pkg[], log: (s: string) => void): Promise<void> {
  const natives = publishedPackagesForPrebuild(all);
  if (natives.length === 0) return;
  const hash = nativeSourcesHash(natives);
  const stampDir = join(ROOT, 'node_modules', '.cache', 'libipc-doctest');
  mkdirSync(stampDir, { recursive: true });
  const nodedir = process.env.npm_config_nodedir || npmNodedir();
  for (const p of natives) {
    const stamp = join(stampDir, `prebuild-${p.name.replace(/[@/]/g, '_')}-${platformDir}`);
    const target = join(p.dir, 'prebuilds', platformDir);
    const have = existsSync(target) && readdirSync(target).some((f) => f.endsWith('.node'));
    if (have && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) continue;
    log(`prebuildify ${p.name} (in a copy of the package)`);
    const copy = mkdtempSync(join(tmpdir(), 'libipc-prebuildify-'));
    try {
      cpSync(p.dir, copy, {
        recursive: true,
        filter: (src) => !/\/(node_modules|build|prebuilds|dist|test|\.turbo)$/.test(src.slice(p.dir.length)),
      });
      symlinkSync(join(p.dir, 'node_modules'), join(copy, 'node_modules'));
      await run('npm', ['run', '--silent', 'prebuildify'], {
        cwd: copy,
        env: { ...process.env, ...(nodedir ? { npm_config_nodedir: nodedir } : {}) },
        timeoutMs: 600_000,
      });
      const built = join(copy, 'prebuilds', platformDir);
      mkdirSync(target, { recursive: true });
      for (const f of readdirSync(built)) {
        copyFileSync(join(built, f), join(target, `.${f}.tmp`));
        renameSync(join(target, `.${f}.tmp`), join(target, f)); // a loader never sees half a binary
      }
      writeFileSync(stamp, hash);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }
}

function publishedPackagesForPrebuild(all: Pkg[]): Pkg[] {
  return all.filter((p) => p.native && typeof p.json.scripts?.prebuildify === 'string');
}

function npmNodedir(): string | undefined {
  try {
    const v = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return v && v !== 'undefined' && v !== 'null' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** `pnpm pack` of every package into dest (workspace: ranges become versions), two at a time. */
export async function packAll(pkgs: Pkg[], dest: string): Promise<Map<string, string>> {
  mkdirSync(dest, { recursive: true });
  const pnpm = pnpmCommand();
  const out = new Map<string, string>();
  const queue = [...pkgs];
  const worker = async (): Promise<void> => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      const before = new Set(readdirSync(dest));
      await run(pnpm[0]!, [...pnpm.slice(1), 'pack', '--pack-destination', dest], { cwd: p.dir, timeoutMs: 120_000 });
      const file = `${p.name.replace(/^@/, '').replace('/', '-')}-${p.json.version}.tgz`;
      if (!existsSync(join(dest, file))) {
        throw new Error(`pnpm pack of ${p.name} did not write ${file} (new: ${readdirSync(dest).filter((f) => !before.has(f)).join(', ')})`);
      }
      out.set(p.name, join(dest, file));
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

function pnpmCommand(): string[] {
  try {
    which('pnpm');
    return ['pnpm'];
  } catch {
    return ['corepack', 'pnpm'];
  }
}

/** A folder whose only programs are node, npm and sh: what an install sees when no compiler is installed. */
export function bareBin(dir: string): string {
  mkdirSync(dir, { recursive: true });
  symlinkSync(process.execPath, join(dir, 'node'));
  symlinkSync(which('npm'), join(dir, 'npm'));
  symlinkSync('/bin/sh', join(dir, 'sh')); // npm runs install scripts with sh
  return dir;
}

/** The environment of a fresh shell: no npm_/pnpm_ settings inherited from the runner, nothing else on PATH. */
export function plainEnv(path: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: path };
  for (const k of ['HOME', 'USER', 'LANG', 'LC_ALL', 'TERM', 'TMPDIR', 'TZ']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}

export interface Project {
  dir: string;
  tarballs: Map<string, string>;
  /** Seconds each step took. */
  timings: Record<string, number>;
}

/**
 * Pack, then `npm init -y` + `npm install <tarballs>` in a new folder under `work`, with node, npm and sh only on
 * PATH. The install runs in two steps so that the no-compiler proof is about our packages only: the tree is
 * installed with --ignore-scripts, then `npm rebuild` runs the install scripts of the @libipc native packages
 * (they must take their prebuilds), then those of third-party packages with the same bare PATH (one that needs a
 * compiler fails: a user without one could not install it). Then the optional step the supervisor's README names, `npm install better-sqlite3`
 * (for `@libipc/supervisor/sqlite` on a Node without node:sqlite): its install script would download a binary
 * from outside the npm registry, which this machine cannot reach, so it is installed without scripts and given the
 * binary the workspace built for the same version; no third-party script runs.
 */
export async function makeProject(work: string, pkgs: Pkg[], log: (s: string) => void): Promise<Project> {
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string): void => {
    timings[name] = Math.round((performance.now() - t) / 100) / 10;
    t = performance.now();
  };
  await ensurePrebuilds(pkgs, log);
  lap('prebuilds');
  const tarballs = await packAll(pkgs, join(work, 'tarballs'));
  lap('pack');
  const bin = bareBin(join(work, 'bin'));
  const dir = join(work, 'project');
  mkdirSync(dir);
  const env = plainEnv(bin);
  await run('npm', ['init', '-y'], { cwd: dir, env, timeoutMs: 60_000 });
  log(`npm install ${[...tarballs.keys()].join(' ')} (PATH: node, npm, sh)`);
  await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs.values()], { cwd: dir, env, timeoutMs: 600_000 });
  const scripted = withInstallScripts(dir);
  const ours = scripted.filter((s) => s.name.startsWith('@libipc/'));
  if (ours.length > 0) {
    await run('npm', ['rebuild', '--foreground-scripts', '--loglevel=error', ...ours.map((s) => s.name)], { cwd: dir, env, timeoutMs: 300_000 });
  }
  // Third-party install scripts (protobufjs's, plain JS) run with the same bare PATH: one that needs a compiler fails.
  const foreign = scripted.filter((s) => !s.name.startsWith('@libipc/'));
  if (foreign.length > 0) {
    log(`npm rebuild ${foreign.map((s) => s.name).join(' ')} (third-party install scripts; PATH: node, npm, sh)`);
    await run('npm', ['rebuild', '--loglevel=error', ...foreign.map((s) => s.name)], { cwd: dir, env, timeoutMs: 300_000 });
  }
  const sqlite = workspaceVersion('better-sqlite3');
  log(`npm install better-sqlite3@${sqlite} (the supervisor README's optional step; the workspace's binary, no install script)`);
  await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', `better-sqlite3@${sqlite}`], { cwd: dir, env, timeoutMs: 600_000 });
  if (!reuseWorkspaceBuild('better-sqlite3', sqlite, join(dir, 'node_modules', 'better-sqlite3'))) {
    throw new Error(`the workspace has no build of better-sqlite3@${sqlite} to give the doctest project (pnpm install builds it)`);
  }
  lap('install');
  return { dir, tarballs, timings };
}

/** The version of a dependency the workspace installed (as the supervisor resolves it). */
function workspaceVersion(name: string): string {
  const pkg = join(ROOT, 'packages', 'supervisor', 'node_modules', name, 'package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** Installed packages that have install scripts (from npm's hidden lockfile). */
function withInstallScripts(project: string): Array<{ name: string; version: string; path: string }> {
  const lock = JSON.parse(readFileSync(join(project, 'node_modules', '.package-lock.json'), 'utf8'));
  return Object.entries(lock.packages as Record<string, { version: string; hasInstallScript?: boolean; name?: string }>)
    .filter(([, v]) => v.hasInstallScript)
    .map(([path, v]) => ({ name: v.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), version: v.version, path }));
}

/** Copies build/ of the same package version from the workspace's pnpm store into `dest`; false when there is none. */
function reuseWorkspaceBuild(name: string, version: string, dest: string): boolean {
  const store = join(ROOT, 'node_modules', '.pnpm');
  const prefix = `${name.replace('/', '+')}@${version}`;
  for (const d of existsSync(store) ? readdirSync(store) : []) {
    if (d !== prefix && !d.startsWith(`${prefix}_`)) continue;
    const build = join(store, d, 'node_modules', name, 'build');
    if (existsSync(join(build, 'Release')) && readdirSync(join(build, 'Release')).some((f) => f.endsWith('.node'))) {
      cpSync(build, join(dest, 'build'), { recursive: true });
      return true;
    }
  }
  return false;
}

/** The files a tarball holds (paths inside package/). */
export function tarballFiles(tgz: string): string[] {
  return execFileSync('tar', ['tzf', tgz], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
}
