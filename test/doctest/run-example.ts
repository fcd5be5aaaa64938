// Runs one README example as a user would (`node example.mjs` in the project that installed the tarballs), with
// a timeout, and reports what it left behind: objects in /dev/shm and processes still running.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Example } from './markdown.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
  /** Names left in /dev/shm (its private /dev/shm when one could be mounted). */
  leftovers: string[];
  /** Processes started by the example still running after it exited (killed since). */
  strays: string[];
  ms: number;
}

/**
 * True when examples can each get a private, empty /dev/shm (root and a mount namespace): their fixed names
 * ('audio', 'demo') then never meet another test's objects, and whatever is left there is theirs.
 */
export const privateShm: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m doctest /dev/shm'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
})();

// In the namespace: an empty tmpfs on /dev/shm, the example, then a listing of what it left there.
const IN_PRIVATE_SHM = 'mount -t tmpfs -o size=1g,mode=1777 doctest /dev/shm || exit 97; "$@"; rc=$?; ls -A /dev/shm >"$LIBIPC_DOCTEST_LEFTOVERS"; exit $rc';

/** Our uid's libipc objects in /dev/shm: without a private /dev/shm, other users' jobs are not this example's. */
function libipcObjects(): string[] {
  const uid = process.getuid?.();
  return readdirSync('/dev/shm').filter((f) => {
    if (!f.startsWith('libipc.')) return false;
    try {
      return uid === undefined || statSync(join('/dev/shm', f)).uid === uid;
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Pids of live processes whose environment holds marker=value (every descendant inherits it). */
function markedProcesses(marker: string): Array<{ pid: number; cmd: string }> {
  const out: Array<{ pid: number; cmd: string }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(marker)) continue;
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      out.push({ pid: Number(d), cmd: readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {}
  }
  return out;
}

let counter = 0;

export async function runExample(ex: Example, opts: { cwd: string; file: string; env: NodeJS.ProcessEnv }): Promise<RunResult> {
  const id = `${process.pid}-${++counter}`;
  const marker = `LIBIPC_DOCTEST_RUN=${id}`;
  const leftoversFile = join(opts.cwd, `.leftovers-${id}`);
  const command = ex.module === 'sh' ? ['sh', '-e', opts.file] : [process.execPath, opts.file];
  const argv = privateShm ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', IN_PRIVATE_SHM, 'sh', ...command] : command;
  const before = privateShm ? [] : libipcObjects();
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: opts.cwd,
    env: { ...opts.env, LIBIPC_DOCTEST_RUN: id, LIBIPC_DOCTEST_LEFTOVERS: leftoversFile },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {}
  }, ex.timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  const ms = Math.round(performance.now() - t0);

  // Processes the example started and did not stop: give them a moment to finish exiting, then end them.
  let strays = markedProcesses(marker);
  for (let i = 0; i < 100 && strays.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    strays = markedProcesses(marker);
  }
  for (const p of strays) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {}
  }

  let leftovers: string[];
  if (privateShm) {
    leftovers = existsSync(leftoversFile) ? readFileSync(leftoversFile, 'utf8').split('\n').filter(Boolean) : [];
    rmSync(leftoversFile, { force: true });
    if (code === 97) output += '\n(could not mount a private /dev/shm)';
  } else {
    const had = new Set(before);
    leftovers = libipcObjects().filter((f) => !had.has(f));
  }
  return { code, signal, timedOut, output, leftovers, strays: strays.map((p) => `${p.pid} ${p.cmd}`), ms };
}
