// Runs the real `libipc` bin (dist/bin.js) in child processes, the way a user's shell would.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll } from 'vitest';
import { canSwitchUsers, stageForOtherUser } from '../../../test/helpers.js';

export const BIN = new URL('../dist/bin.js', import.meta.url).pathname;
export const EXAMPLE = new URL('../examples/libipc.yaml', import.meta.url).pathname;
export const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;

/** A temp folder removed after the file's tests; also the runtime folder of the runs a test starts. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'libipc-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `libipc …args` to completion. */
export function cli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Running {
  child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** Resolves once the output contains a match (awaited, not slept for). */
  waitFor(match: string | RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  write(data: string): void;
}

/** Starts a long-running command; with `pty`, under a pseudo-terminal (script) as in a real terminal. */
export function start(argv: string[], opts: { env?: Record<string, string>; pty?: boolean; cwd?: string } = {}): Running {
  const env = { ...process.env, NO_COLOR: '1', ...opts.env };
  const quoted = argv.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const child = opts.pty
    ? spawn('python3', [new URL('../../../test/fixtures/reaper.py', import.meta.url).pathname, 'script', '-qfec', `stty cols 140 rows 40; exec ${quoted}`, '/dev/null'], { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('python3', [new URL('../../../test/fixtures/reaper.py', import.meta.url).pathname, ...argv], { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  // 'close', not 'exit': all its output has been read by then.
  const exited = once(child, 'close').then(([code]) => code as number | null);
  return {
    child,
    output: () => out,
    write: (data) => child.stdin!.write(data),
    exited,
    waitFor(match, timeoutMs = 30_000) {
      const test = () => (typeof match === 'string' ? out.includes(match) : match.test(out));
      if (test()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(() => reject(new Error(`no ${String(match)} within ${timeoutMs} ms; output:\n${out.slice(-3000)}`))), timeoutMs);
        const check = () => test() && done(resolve);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
          settle();
        };
        waiters.push(check);
        void exited.then(() => setImmediate(() => waiters.includes(check) && done(() => reject(new Error(`exited before ${String(match)}; output:\n${out.slice(-3000)}`)))));
      });
    },
  };
}

export function node(script: string): string[] {
  return [process.execPath, script];
}

export function libipc(...args: string[]): string[] {
  return [process.execPath, BIN, ...args];
}

/** True while a process with this pid exists and is not a zombie. */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** An ordinary (non-root) uid the tests run the cli as when they run as root. */
export const NOBODY = 65534;

/**
 * Who runs the cli in a test: this process's user as it is, or (as root) uid 65534 through setpriv, with the cli
 * package staged where that uid can read it and HOME, XDG_RUNTIME_DIR and LIBIPC_RUNTIME_DIR in a folder it owns.
 */
export interface CliUser {
  /** 'self' or 'uid 65534'. */
  label: string;
  uid: number;
  /** The example config where this user can read it. */
  example: string;
  /** A folder this user owns (its HOME). */
  home: string;
  env: Record<string, string>;
  /** The argv of `libipc …args` as this user. */
  argv(...args: string[]): string[];
  /** Runs `libipc …args` to completion as this user. */
  cli(args: string[], env?: Record<string, string>): Promise<Result>;
}

/** The users a test that spawns services runs as: this one, and uid 65534 too when this one is root. */
export function cliUsers(): CliUser[] {
  const users: CliUser[] = [makeUser(process.getuid?.() ?? 0, false)];
  if (canSwitchUsers) users.push(makeUser(NOBODY, true));
  return users;
}

function makeUser(uid: number, switched: boolean): CliUser {
  let staged: { path: string; remove(): void } | undefined;
  let home: string | undefined;
  const prepare = () => {
    if (home) return;
    // Staged lazily (once a test of this user runs), removed after the file's tests.
    staged = switched ? stageForOtherUser(EXAMPLE) : undefined;
    home = mkdtempSync(join(tmpdir(), 'libipc-cli-home-'));
    if (switched) {
      chmodSync(home, 0o700);
      chownSync(home, uid, uid);
    }
  };
  afterAll(() => {
    staged?.remove();
    if (home) rmSync(home, { recursive: true, force: true });
  });
  const prefix = switched ? ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'] : [];
  const user: CliUser = {
    label: switched ? `uid ${uid}` : 'self',
    uid,
    get example() {
      prepare();
      return staged?.path ?? EXAMPLE;
    },
    get home() {
      prepare();
      return home!;
    },
    get env() {
      prepare();
      return { HOME: home!, XDG_RUNTIME_DIR: home!, LIBIPC_RUNTIME_DIR: join(home!, 'rt') };
    },
    argv: (...args) => {
      prepare();
      const bin = staged ? join(dirname(staged.path), '..', 'dist', 'bin.js') : BIN;
      return [...prefix, process.execPath, bin, ...args];
    },
    cli: (args, env = {}) =>
      new Promise((resolve) => {
        const [cmd, ...rest] = user.argv(...args) as [string, ...string[]];
        execFile(cmd, rest, { env: { ...process.env, NO_COLOR: '1', ...user.env, ...env }, cwd: user.home, timeout: 30_000 }, (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
          resolve({ code, stdout, stderr });
        });
      }),
  };
  return user;
}
