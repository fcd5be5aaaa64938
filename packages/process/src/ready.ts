import { closeSync, fstatSync, writeSync } from 'node:fs';
import { ExitedEarlyError, InvalidArgumentError, TimeoutError, validateTimeout } from '@libipc/shm';
import { type ExitStatus, describeExit } from './exit-status.js';
import { READY_FD, READY_FD_ENV, type ProcessHandle, handleInternals } from './spawn.js';

/**
 * Inside a child: tells the host it is ready by writing `READY\n` to the fd named by LIBIPC_READY_FD
 * (s6-style; any language can do the same) and closing it. A no-op when the variable is unset.
 */
export function ready(): void {
  const value = process.env[READY_FD_ENV];
  if (value === undefined) return;
  // Our own descendants must not inherit a notification fd that is already used.
  delete process.env[READY_FD_ENV];
  const fd = Number(value);
  if (!Number.isInteger(fd) || fd < 0) return;
  try {
    // Only a pipe or socket is a notification fd; anything else was inherited by accident. BigInt stats: a
    // plain fstatSync of a pipe leaves S_IFIFO in Node's shared stat buffer, and Node 20's realpathSync reads
    // that buffer for cached path components, so a later require() through a symlink (pnpm) stops resolving.
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFIFO() && !st.isSocket()) return;
    writeSync(fd, 'READY\n');
    closeSync(fd);
  } catch {
    // The host stopped listening (or never did): readiness is best effort on the child's side.
  }
}

/**
 * In the host: resolves when the child wrote READY to its ready fd. Rejects with ExitedEarlyError the moment
 * the child exits first, TimeoutError after timeoutMs, or the signal's reason when aborted.
 * Does not kill the child.
 */
export function waitForReady(h: ProcessHandle, timeoutMs?: number, signal?: AbortSignal): Promise<void> {
  const ms = validateTimeout(timeoutMs, 'readyTimeoutMs');
  if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('signal must be an AbortSignal (e.g. AbortSignal.timeout(ms) or controller.signal)');
  }
  const i = handleInternals(h);
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let timer: NodeJS.Timeout | undefined;
    const done = (fn: () => void) => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => done(() => reject(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (ms !== Infinity) {
      timer = setTimeout(
        () => done(() => reject(new TimeoutError(`${h.name} (pid ${h.pid}) did not write READY to fd ${READY_FD} within ${ms} ms; call ready() in the child or allow it more time (readyTimeoutMs; startTimeoutMs in a supervisor ServiceSpec or libipc config)`))),
        ms,
      );
    }
    void i.readyLine.then(() => done(resolve));
    void h.exit.then((st) => done(() => reject(exitedEarly(h, st, 'got ready'))));
  });
}

export function exitedEarly(h: ProcessHandle, st: ExitStatus, what: string): ExitedEarlyError {
  const tail = handleInternals(h).stderrTail();
  const tailText = tail ? `; last stderr:\n${tail.trimEnd()}` : '';
  return new ExitedEarlyError(`${h.name} (pid ${h.pid}) exited with ${describeExit(st)} before it ${what}${tailText}`, {
    exitCode: st.exitCode,
    signal: st.signal,
    stderrTail: tail,
  });
}
