import { InvalidArgumentError } from './errors.js';
import { native } from './native.js';
import { describeValue, option, parseOptions } from './options.js';
import { processIdentity, validatePid } from './process-identity.js';

export interface WatchExitOptions {
  /** Stop watching; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Keep the process alive while watching (default true). */
  ref?: boolean;
}

const WATCH_EXIT_OPTIONS = { signal: option.signal(), ref: option.boolean() };

// Without pidfd (kernels before 5.3) the exit is found by polling: only a fallback.
const FALLBACK_POLL_MS = 50;

/**
 * Resolves when the process exits: any pid, not only our children. The pidfd is polled by the event
 * loop, so the exit is seen at once. Resolves at once when the process is already gone, is a zombie,
 * or (with startTime) the pid now belongs to another process.
 */
export function watchExit(pid: number, startTime?: bigint, opts: WatchExitOptions = {}): Promise<void> {
  validatePid(pid);
  if (startTime !== undefined && startTime !== null && typeof startTime !== 'bigint') {
    throw new InvalidArgumentError(`startTime must be a bigint (from processIdentity(pid).startTime), got ${describeValue(startTime)}`);
  }
  const { signal, ref = true } = parseOptions(opts, WATCH_EXIT_OPTIONS, 'watchExit options');
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const gone = () => {
      const id = processIdentity(pid);
      return id === undefined || (startTime !== undefined && id.startTime !== startTime);
    };
    if (gone()) return resolve();

    let watch: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      signal?.removeEventListener('abort', onAbort);
      if (timer) clearInterval(timer);
      resolve();
    };
    const onAbort = () => {
      if (watch !== undefined) native().pidWatchClose(watch);
      if (timer) clearInterval(timer);
      reject(signal?.reason);
    };
    try {
      watch = native().pidWatchOpen(pid, finish);
    } catch (err) {
      const errno = (err as { errno?: string }).errno;
      if (errno === 'ESRCH') return resolve();
      if (errno !== 'ENOSYS') return reject(err);
      timer = setInterval(() => gone() && finish(), FALLBACK_POLL_MS);
      if (!ref) timer.unref();
    }
    // The pid may have been reused between the first check and pidfd_open.
    if (watch !== undefined && gone()) {
      native().pidWatchClose(watch);
      return resolve();
    }
    if (watch !== undefined && !ref) native().pidWatchRef(watch, false);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
