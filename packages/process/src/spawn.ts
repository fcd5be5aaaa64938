import { type ChildProcess, spawn as nodeSpawn } from 'node:child_process';
import { accessSync, constants, fstatSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { describeValue, InvalidArgumentError, option, parseOptions, SpawnError, isAlive as identityAlive, processIdentity, validateName } from '@libipc/shm';
import { type ExitStatus, exitStatus } from './exit-status.js';
import { resolveExecutable } from './resolve-executable.js';

/** The fd number a spawned child finds in LIBIPC_READY_FD. */
export const READY_FD = 3;
export const READY_FD_ENV = 'LIBIPC_READY_FD';
const STDERR_TAIL_BYTES = 4096;
/** The first fd number a child gets its inherited fds at (after stdio and the READY pipe). */
export const FIRST_INHERITED_FD = READY_FD + 1;
const MAX_INHERITED_FDS = 64;

export interface SpawnOptions {
  /** Added to (and overriding) this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** stdin, stdout and stderr: 'inherit' (default), 'pipe' or 'ignore'. */
  stdio?: 'inherit' | 'pipe' | 'ignore';
  /** Run the child in its own process group (and session) and signal the whole group. */
  killTree?: boolean;
  /**
   * Open fds of this process the child gets as its fds 4, 5, … in this order (fd 3 is the READY pipe), e.g.
   * listening sockets (@libipc/shm listenTcp). The child's copies are its own: closing them leaves ours open.
   */
  inheritFds?: number[];
}

export interface ProcessHandle {
  readonly pid: number;
  readonly name: string;
  /** The absolute path that was run. */
  readonly executable: string;
  /** False once the child has exited (a zombie counts as exited). */
  isAlive(): boolean;
  /** Resolves when the child exits; the child is reaped by then. Never rejects. */
  readonly exit: Promise<ExitStatus>;
  /** The child's stdin with `stdio: 'pipe'`, else null. */
  readonly stdin: Writable | null;
  /** The child's stdout with `stdio: 'pipe'`, else null. Read it, or the child blocks once the pipe is full. */
  readonly stdout: Readable | null;
  /** The child's stderr with `stdio: 'pipe'`, else null (its last 4 KB are also kept for error messages). */
  readonly stderr: Readable | null;
}

/** Per-handle state the other modules of this package need (not public). */
export interface HandleInternals {
  child: ChildProcess;
  killTree: boolean;
  startTime: bigint | undefined;
  exitStatus: ExitStatus | undefined;
  /** Resolves on the first READY line on the ready fd; never rejects. */
  readyLine: Promise<void>;
  stderrTail(): string | undefined;
}

const internals = new WeakMap<ProcessHandle, HandleInternals>();

export function handleInternals(h: ProcessHandle): HandleInternals {
  const i = internals.get(h);
  if (!i) throw new InvalidArgumentError('expected a ProcessHandle returned by spawn() of @libipc/process');
  return i;
}

class ChildHandle implements ProcessHandle {
  readonly pid: number;
  readonly name: string;
  readonly executable: string;
  readonly exit: Promise<ExitStatus>;
  /** Streams of the child when stdio is 'pipe', else null. */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;

  constructor(name: string, executable: string, child: ChildProcess, i: HandleInternals) {
    this.pid = child.pid!;
    this.name = name;
    this.executable = executable;
    this.stdin = child.stdin;
    this.stdout = child.stdout;
    this.stderr = child.stderr;
    this.exit = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        i.exitStatus = exitStatus(code, signal);
        resolve(i.exitStatus);
      });
    });
  }

  isAlive(): boolean {
    const i = internals.get(this)!;
    return i.exitStatus === undefined && identityAlive(this.pid, i.startTime);
  }
}

function validateArgs(args: unknown): string[] {
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw new InvalidArgumentError(`args must be an array of strings, got ${JSON.stringify(args)}`);
  }
  return args;
}

const envRecord = option.custom<Record<string, string>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'),
  'an object of string values, e.g. { NODE_ENV: "production" }',
);
export const SPAWN_OPTIONS = {
  env: envRecord,
  cwd: option.custom<string>((v) => typeof v === 'string' && v.length > 0 && v.length <= 4096, 'a directory path (a non-empty string)'),
  stdio: option.oneOf('inherit', 'pipe', 'ignore'),
  killTree: option.boolean(),
  inheritFds: option.custom<number[]>(
    (v) => Array.isArray(v) && v.length <= MAX_INHERITED_FDS && v.every((fd) => Number.isInteger(fd) && fd >= 0 && fd < 2 ** 31),
    `an array of at most ${MAX_INHERITED_FDS} open fds (whole numbers >= 0)`,
  ),
};

/** Checks spawn options (null means "default"); returns the given ones. */
export function validateSpawnOptions(opts: unknown, what = 'spawn options'): SpawnOptions {
  return parseOptions(opts, SPAWN_OPTIONS, what);
}

/**
 * Starts `executable` (searched on PATH) as a child that this handle owns. Throws SpawnError synchronously
 * when it cannot be found or run. The child gets LIBIPC_READY_FD=3, a pipe it may write `READY\n` to.
 */
export function spawn(name: string, executable: string, args: string[] = [], opts: SpawnOptions = {}): ProcessHandle {
  validateName(name, 'process name');
  if (typeof executable !== 'string' || executable === '') {
    throw new InvalidArgumentError(`executable must be a non-empty string, got ${describeValue(executable)}`);
  }
  validateArgs(args);
  opts = validateSpawnOptions(opts);
  const cwd = opts.cwd ?? process.cwd();
  if (opts.cwd !== undefined && !isDirectory(cwd)) {
    throw new SpawnError(`cannot spawn ${JSON.stringify(executable)}: working directory ${cwd} does not exist or is not a directory`);
  }
  // The OS would refuse with a bare EACCES, reported only after the spawn returned: say which folder, and why.
  if (!canEnter(cwd)) {
    const whose = opts.cwd === undefined ? " (this process's own, the default)" : '';
    throw new SpawnError(`cannot spawn ${JSON.stringify(executable)}: this user (uid ${process.getuid?.()}) cannot enter the working directory ${cwd}${whose}; pass a cwd it can enter`);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, [READY_FD_ENV]: String(READY_FD) };
  const file = resolveExecutable(executable, env.PATH, cwd);
  const stdio = opts.stdio ?? 'inherit';
  for (const fd of opts.inheritFds ?? []) {
    if (!isOpen(fd)) throw new SpawnError(`cannot spawn ${JSON.stringify(executable)}: inheritFds: fd ${fd} is not open in this process`);
  }
  const killTree = opts.killTree ?? false;

  let child: ChildProcess;
  try {
    child = nodeSpawn(file, args, {
      argv0: executable,
      cwd,
      env,
      stdio: [stdio, stdio, stdio, 'pipe', ...(opts.inheritFds ?? [])],
      detached: killTree,
    });
  } catch (err) {
    throw new SpawnError(`cannot spawn ${file}: ${(err as Error).message}`, { cause: err });
  }
  // A failed spawn leaves pid undefined at once and emits 'error' on the next tick.
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError ??= err));
  if (child.pid === undefined) {
    // Node stops before setting up the child's stdio only when descriptors ran out (EMFILE, ENFILE).
    if (child.stdio === undefined) {
      throw new SpawnError(
        `cannot spawn ${file}: out of file descriptors (EMFILE/ENFILE); raise this process's limit (ulimit -n, LimitNOFILE= in a systemd unit) or close what it keeps open`,
      );
    }
    for (const s of child.stdio) (s as Socket | null)?.destroy();
    throw new SpawnError(`cannot spawn ${file}: the OS refused to start it`, { cause: spawnError });
  }

  try {
    return own(name, file, child, killTree);
  } catch (err) {
    // Never leave a child nobody owns.
    child.kill('SIGKILL');
    throw err;
  }
}

function own(name: string, file: string, child: ChildProcess, killTree: boolean): ProcessHandle {
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
  });
  const readyPipe = child.stdio[READY_FD] as Socket;
  const i: HandleInternals = {
    child,
    killTree,
    startTime: processIdentity(child.pid!)?.startTime,
    exitStatus: undefined,
    readyLine: readReady(readyPipe),
    stderrTail: () => (child.stderr ? tail : undefined),
  };
  const handle = new ChildHandle(name, file, child, i);
  internals.set(handle, i);
  // The ready pipe must not keep this process alive, and a grandchild holding it open must not leak it.
  readyPipe.unref();
  void handle.exit.then(() => readyPipe.destroy());
  return handle;
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd, { bigint: true });
    return true;
  } catch {
    return false;
  }
}

function canEnter(dir: string): boolean {
  try {
    accessSync(dir, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Resolves on the first READY line; keeps draining afterwards so a child writing again never gets EPIPE. */
function readReady(pipe: Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen = (seen + chunk.toString('latin1')).slice(-64);
      if (seen.includes('READY\n')) {
        pipe.off('data', onData);
        pipe.resume();
        resolve();
      }
    };
    pipe.on('data', onData);
    // `printf READY` without a newline, then closing the fd, counts too.
    pipe.on('end', () => seen.endsWith('READY') && resolve());
    pipe.on('error', () => {});
  });
}
