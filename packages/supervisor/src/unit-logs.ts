import { existsSync, rmdirSync } from 'node:fs';
import { IllegalStateError } from '@libipc/shm';
import { RotatingLogFile, makeDir } from './log-file.js';
import { LogPipe } from './log-pipe.js';
import { type LineSource, LogReader, lastLines, logPaths, mergeByTime } from './logs.js';
import type { FileLogs } from './spec.js';
import type { Unit } from './unit.js';

/** A unit's log files, wired to its processes (through FIFOs that outlive them) and to its followers. */

/** Opens the FIFOs and files of a unit before its start; `gone()`: the unit was removed or the manager closed meanwhile. */
export async function openLogs(u: Unit, l: FileLogs, gone: () => boolean, warn: (err: unknown) => void): Promise<void> {
  const p = logPaths(l.dir, u.name);
  makeDir(p.fifoDir);
  const [stdout, stderr] = await Promise.all([
    LogPipe.open(p.fifo.stdout, new RotatingLogFile(p.file.stdout, l.maxBytes, l.keep)),
    LogPipe.open(p.fifo.stderr, new RotatingLogFile(p.file.stderr, l.maxBytes, l.keep)),
  ]);
  if (u.logs || gone()) {
    stdout.close(!u.logs);
    stderr.close(!u.logs);
    return;
  }
  wireLogs(u, stdout, stderr, warn);
}

/** An adopted process still writes to the FIFOs (or the pipes) an earlier manager gave it: read them again. */
export function reattachLogs(u: Unit, l: FileLogs, pid: number, warn: (err: unknown) => void): void {
  const p = logPaths(l.dir, u.name);
  try {
    const pipe = (stream: 'stdout' | 'stderr', fd: number) =>
      LogPipe.fromPath(
        existsSync(p.fifo[stream]) ? p.fifo[stream] : `/proc/${pid}/fd/${fd}`,
        p.fifo[stream],
        new RotatingLogFile(p.file[stream], l.maxBytes, l.keep),
        lastLines(p.file[stream], l.keep, 1)[0]?.slice(0, 24),
      );
    wireLogs(u, pipe('stdout', 1), pipe('stderr', 2), warn);
  } catch (err) {
    warn(new IllegalStateError(`cannot re-attach the logs of ${u.name} (pid ${pid}): ${(err as Error).message}`));
  }
}

function wireLogs(u: Unit, stdout: LogPipe, stderr: LogPipe, warn: (err: unknown) => void): void {
  u.logs = { stdout, stderr };
  stdout.on('line', (l: string) => u.hasLogListeners && u.logEvents.emit('line', l, 'stdout'));
  stderr.on('line', (l: string) => u.hasLogListeners && u.logEvents.emit('line', l, 'stderr'));
  for (const p of [stdout, stderr]) p.on('write-error', (err: unknown) => warn(err));
}

/** Writes out what is still in the pipes (`final`: the process is gone, read to the end). */
export function drainLogs(u: Unit, final: boolean): void {
  u.logs?.stdout.drain(final);
  u.logs?.stderr.drain(final);
}

/** Closes the pipes (`unlink`: and removes the FIFOs); followers are told the end. */
export function closeLogs(u: Unit, unlink: boolean): void {
  if (u.logs) {
    u.logs.stdout.close(unlink);
    u.logs.stderr.close(unlink);
    if (unlink && typeof u.spec.logs === 'object') {
      try {
        rmdirSync(logPaths(u.spec.logs.dir, u.name).fifoDir);
      } catch {
        // other services' pipes are still there
      }
    }
    u.logs = undefined;
  }
  if (u.hasLogListeners) u.logEvents.emit('end');
}

/** Manager.logs(): the last `n` lines of a unit's files, then (`follow`) each new one until it is removed or the manager closes. */
export function readLogs(u: Unit, l: FileLogs, n: number, stream: 'stdout' | 'stderr' | 'both', follow: boolean, gone: () => boolean): LogReader {
  const p = logPaths(l.dir, u.name);
  const snapshot = () => {
    // What is still in the pipe belongs before anything read now.
    drainLogs(u, false);
    if (stream !== 'both') return lastLines(p.file[stream], l.keep, n);
    return mergeByTime(lastLines(p.file.stdout, l.keep, n), lastLines(p.file.stderr, l.keep, n), n);
  };
  let live: LineSource | undefined;
  if (follow) {
    live = (onLine, onEnd) => {
      if (gone()) {
        queueMicrotask(onEnd);
        return () => {};
      }
      const line = (s: string, which: string) => (stream === 'both' || stream === which) && onLine(s);
      u.logEvents.on('line', line);
      u.logEvents.on('end', onEnd);
      return () => {
        u.logEvents.off('line', line);
        u.logEvents.off('end', onEnd);
      };
    };
  }
  return new LogReader(snapshot, live);
}
