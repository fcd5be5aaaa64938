// Helpers shared by every package's tests: real child processes, and leak checks.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { afterEach } from 'vitest';
import { ourReports } from './sanitizer-reports.mjs';

/** Returns `track(handle)`: every handle it is given is closed after the current test (in a test file's scope). */
export function closeAfterEach(): <T extends { close(): void }>(handle: T) => T {
  const open: Array<{ close(): void }> = [];
  afterEach(() => {
    for (const h of open.splice(0)) h.close();
  });
  return (handle) => (open.push(handle), handle);
}

/** A unique name for this test run, so parallel test files never share objects. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** libipc objects in /dev/shm whose name contains `fragment`. */
export function shmObjects(fragment: string): string[] {
  return readdirSync('/dev/shm').filter((f) => f.startsWith('libipc.') && f.includes(fragment));
}

function stat(pid: string): { state: string; ppid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Pids of zombies whose parent is this process. */
export function zombieChildren(parent = process.pid): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      const s = stat(d);
      return s?.state === 'Z' && s.ppid === parent;
    })
    .map(Number);
}

/** Live (non-zombie) children of a process. */
export function liveChildren(parent = process.pid): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      const s = stat(d);
      return s !== undefined && s.state !== 'Z' && s.ppid === parent;
    })
    .map(Number);
}

export interface NodeChild {
  child: ChildProcess;
  /** Resolves with the first stdout line that satisfies `match` (a prefix or a predicate). */
  line(match: string | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  /** Resolves when the child has exited (and been reaped). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const REAPER = new URL('./fixtures/reaper.py', import.meta.url).pathname;

const SMALL_TMPFS = new URL('./fixtures/in-small-tmpfs.sh', import.meta.url).pathname;

/** True when this process may run children as another uid (setpriv) and in a private mount namespace (unshare). */
export const canSwitchUsers = process.getuid?.() === 0;
export const canMountTmpfs = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /dev/shm'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
})();

/** The folder of the package.json nearest above `file` that names a package (not a `{ "type": … }` marker in a subfolder). */
function packageRootOf(file: string): string {
  let dir = dirname(file);
  const named = (d: string) => existsSync(join(d, 'package.json')) && typeof (JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')) as { name?: unknown }).name === 'string';
  while (!named(dir)) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${file}`);
    dir = up;
  }
  return dir;
}

/** Copies what a package needs at run time (its own dist and native binary, and its dependencies) into `nodeModules`. */
function stagePackage(root: string, nodeModules: string, done: Set<string>): void {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; dependencies?: Record<string, string> };
  if (done.has(pkg.name)) return;
  done.add(pkg.name);
  const to = join(nodeModules, pkg.name);
  const workspace = !root.split('/').includes('node_modules');
  // A workspace package brings only its built parts (not its node_modules or sources); a published one comes whole.
  const parts = workspace ? ['package.json', 'dist', 'build/Release', 'prebuilds'] : readdirSync(root).filter((f) => f !== 'node_modules');
  for (const part of parts) {
    if (existsSync(join(root, part))) cpSync(join(root, part), join(to, part), { recursive: true, dereference: true, filter: (src) => !src.endsWith('.d.ts') || workspace });
  }
  const resolveFrom = createRequire(join(root, 'package.json'));
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    if (dep === 'node-addon-api') continue; // headers for building, not needed at run time
    let depRoot: string;
    try {
      depRoot = packageRootOf(realpathSync(resolveFrom.resolve(`${dep}/package.json`)));
    } catch {
      depRoot = packageRootOf(realpathSync(resolveFrom.resolve(dep)));
    }
    stagePackage(depRoot, nodeModules, done);
  }
}

/**
 * Another uid may not be able to enter this checkout (a clone under /root, a 0700 temporary folder): copy the
 * fixture's package (built parts only), its dependencies and its fixtures folder to a world-readable temporary
 * folder, laid out as an installed package, so the fixture runs as any uid by construction. Returns the fixture's
 * path there and a function that removes the copy.
 */
export function stageForOtherUser(fixturePath: string): { path: string; remove(): void } {
  const real = realpathSync(fixturePath);
  const root = packageRootOf(real);
  const top = mkdtempSync(join(tmpdir(), 'libipc-other-uid-'));
  const nodeModules = join(top, 'node_modules');
  stagePackage(root, nodeModules, new Set());
  const name = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string }).name;
  const rel = relative(root, real);
  cpSync(dirname(real), join(nodeModules, name, dirname(rel)), { recursive: true, dereference: true });
  // mkdtemp makes 0700 folders; the other uid needs to read and enter every one of them.
  const open = (dir: string) => {
    chmodSync(dir, 0o755);
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) open(join(dir, e.name));
      else if (e.isFile()) chmodSync(join(dir, e.name), 0o644 | 0o111);
    }
  };
  open(top);
  return { path: join(nodeModules, name, rel), remove: () => rmSync(top, { recursive: true, force: true }) };
}

/** Starts `node [nodeArgs…] script args…` with piped stdout, line-oriented. */
export function spawnNode(
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  opts: {
    underReaper?: boolean;
    /** Run as this uid (and its gid) through setpriv: needs root. Its working directory is then the staged copy's. */
    asUid?: number;
    /** The child's working directory (default: this process's, or with asUid the staged copy's folder). */
    cwd?: string;
    /** Run with /dev/shm a private tmpfs of this size and inode count (unshare -m): needs root. */
    smallTmpfs?: { size: string; inodes: number };
    /** Run under prlimit with this many file descriptors at most. */
    maxFds?: number;
  } = {},
): NodeChild {
  const staged = opts.asUid !== undefined ? stageForOtherUser(script) : undefined;
  let argv = [process.execPath, ...nodeArgs, staged?.path ?? script, ...args];
  // Under the reaper, orphans of the script (its children, once it is killed) are reaped, not left as zombies.
  if (opts.underReaper) argv = ['python3', REAPER, ...argv];
  if (opts.maxFds !== undefined) argv = ['prlimit', `--nofile=${opts.maxFds}`, ...argv];
  if (opts.asUid !== undefined) argv = ['setpriv', `--reuid=${opts.asUid}`, `--regid=${opts.asUid}`, '--clear-groups', ...argv];
  if (opts.smallTmpfs) argv = [SMALL_TMPFS, opts.smallTmpfs.size, String(opts.smallTmpfs.inodes), ...argv];
  const [cmd, ...cmdArgs] = argv as [string, ...string[]];
  const child = spawn(cmd, cmdArgs, {
    // Another uid may not be able to enter this process's working directory (a checkout under /root).
    cwd: opts.cwd ?? (staged ? dirname(staged.path) : undefined),
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const lines: string[] = [];
  const waiters: Array<{ test: (l: string) => boolean; resolve: (l: string) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of [...waiters]) {
      if (w.test(l)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => {
    staged?.remove();
    return { code, signal };
  }) as NodeChild['exited'];
  return {
    child,
    exited,
    line(match, timeoutMs = 20_000) {
      const test = typeof match === 'string' ? (l: string) => l.startsWith(match) : match;
      const seen = lines.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${String(match)} within ${timeoutMs} ms; got: ${lines.join(' | ')}`)), timeoutMs);
        waiters.push({ test, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(new Error(`child exited (${code ?? signal}) before printing a line matching ${String(match)}; got: ${lines.join(' | ')}`));
        });
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Resolves with the first line of a (growing) text file that satisfies `test`; fs.watch, no polling loop. */
export async function waitForFileLine(path: string, test: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
  const { watch, readFileSync: read, writeFileSync, existsSync } = await import('node:fs');
  if (!existsSync(path)) writeFileSync(path, '');
  const find = () => read(path, 'utf8').split('\n').find((l) => l.length > 0 && test(l));
  return new Promise((resolve, reject) => {
    const watcher = watch(path, () => {
      const line = find();
      if (line !== undefined) done(() => resolve(line));
    });
    const timer = setTimeout(() => done(() => reject(new Error(`no matching line in ${path} within ${timeoutMs} ms:\n${read(path, 'utf8')}`))), timeoutMs);
    const done = (settle: () => void) => {
      clearTimeout(timer);
      watcher.close();
      settle();
    };
    const line = find();
    if (line !== undefined) done(() => resolve(line));
  });
}

/**
 * When this test runs under the sanitized native build (.ci/sanitize preloads libasan), children get their own
 * report folder; `reports()` returns the report blocks (one leak or error each) that name libipc's native code.
 * Outside that run `active` is false and `reports()` is empty.
 */
export function sanitizerReports(): { active: boolean; env: Record<string, string>; reports(): string[]; remove(): void } {
  const active = /libasan/.test(process.env.LD_PRELOAD ?? '');
  if (!active) return { active, env: {}, reports: () => [], remove: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'libipc-asan-'));
  return {
    active,
    env: {
      ASAN_OPTIONS: `detect_leaks=1:halt_on_error=1:log_path=${dir}/asan`,
      UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=1:log_path=${dir}/ubsan`,
      LSAN_OPTIONS: 'exitcode=0',
    },
    reports: () => ourReports(dir),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A TCP port on 127.0.0.1 that nobody listens on right now (the kernel's pick; a test binds it soon after). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
