import { describeValue } from './describe.js';
import { IllegalStateError, InvalidArgumentError, TimeoutError } from './errors.js';
import type { LockOutcome } from './native.js';
import type { SharedMemory } from './shared-memory.js';
import { validateOffset, validateTimeout } from './validate.js';
import { wait } from './wait.js';
import { watchExit } from './watch-exit.js';

/** Bytes a RobustMutex occupies in shared memory (8-byte aligned). */
export const ROBUST_MUTEX_SIZE = 16;

export interface LockResult {
  /** The last holder died holding the lock: the data it guarded may be half-written; repair it. */
  ownerDied: boolean;
}

// An async waiter wakes at least this often to re-read the owner (it may have changed while we slept).
const ASYNC_RECHECK_MS = 250;

/**
 * A process-shared mutex in 16 bytes of a segment that survives its holder's SIGKILL: the next locker
 * gets `ownerDied: true`. Ownership is per process (pid + start time), so any thread or async task of the
 * owner may unlock it. Not re-entrant. Layout: docs/layout.md.
 */
export class RobustMutex {
  readonly mem: SharedMemory;
  readonly byteOffset: number;

  constructor(mem: SharedMemory, byteOffset: number) {
    this.mem = mem;
    this.byteOffset = validateOffset(mem, byteOffset, 8);
  }

  /** Initialises the mutex as unlocked (only while nobody else can use it: at segment creation). */
  static init(mem: SharedMemory, byteOffset: number): RobustMutex {
    const m = new RobustMutex(mem, byteOffset);
    mem.handle.mutexInit(m.byteOffset);
    return m;
  }

  tryLock(): { acquired: boolean; ownerDied: boolean } {
    this.mem.assertOpen();
    const r = this.mem.handle.mutexTryLock(this.byteOffset);
    return { acquired: r === 'acquired' || r === 'owner-died', ownerDied: r === 'owner-died' };
  }

  /**
   * Locks without blocking the event loop: sleeps until the holder unlocks or dies (its exit is watched
   * with a pidfd). Rejects with ERR_LIBIPC_TIMEOUT after timeoutMs (default: wait forever).
   */
  async lock(timeoutMs?: number): Promise<LockResult> {
    const timeout = validateTimeout(timeoutMs);
    const deadline = performance.now() + timeout;
    for (;;) {
      const r = this.tryLock();
      if (r.acquired) return { ownerDied: r.ownerDied };
      const left = deadline - performance.now();
      if (left <= 0) throw this.timeoutError(timeout);
      this.mem.assertOpen();
      const prepared = this.mem.handle.mutexPrepareWait(this.byteOffset);
      // Free now, or abandoned by a torn-down environment: try again at once. The owner changing under us
      // is normal under contention: retry, never reject.
      if (prepared === null || prepared[1] === 0) continue;
      const [observed, ownerPid, ownerStart] = prepared;
      const stopWatching = new AbortController();
      let ownerExit: Promise<unknown> = new Promise(() => undefined);
      try {
        ownerExit = watchExit(ownerPid, ownerStart === 0n ? undefined : ownerStart, { signal: stopWatching.signal }).catch(() => undefined);
      } catch {
        continue; // a pid we cannot watch is not a live owner: try to take the lock over
      }
      try {
        await Promise.race([wait(this.mem, this.byteOffset, observed, Math.min(left, ASYNC_RECHECK_MS)), ownerExit]);
      } finally {
        stopWatching.abort();
      }
    }
  }

  /**
   * Locks synchronously, for critical sections of microseconds. Bounded: a holder that is stopped
   * (SIGSTOP) makes this fail with ERR_LIBIPC_TIMEOUT at timeoutMs instead of freezing this process.
   */
  lockSync(timeoutMs: number): LockResult {
    const timeout = validateTimeout(timeoutMs);
    if (!Number.isFinite(timeout)) {
      throw new InvalidArgumentError('lockSync needs a finite timeoutMs: a synchronous wait must be bounded; use lock() to wait longer');
    }
    this.mem.assertOpen();
    const r: LockOutcome = this.mem.handle.mutexLockSync(this.byteOffset, timeout);
    if (r === 'timed-out') throw this.timeoutError(timeout);
    return { ownerDied: r === 'owner-died' };
  }

  unlock(): void {
    this.mem.assertOpen();
    if (!this.mem.handle.mutexUnlock(this.byteOffset)) {
      throw new IllegalStateError(
        `mutex at ${this.mem.name}+${this.byteOffset} is not held by this process; unlock only what you locked`,
      );
    }
  }

  /** The pid holding the lock, or 0 when it is free (or abandoned by a torn-down worker). */
  get ownerPid(): number {
    const word = Atomics.load(new Uint32Array(this.mem.buffer, this.byteOffset, 1), 0);
    return word & 0x00400000 ? 0 : word & 0x003fffff;
  }

  private timeoutError(timeout: unknown): TimeoutError {
    const owner = this.ownerPid;
    return new TimeoutError(
      `could not lock mutex at ${this.mem.name}+${this.byteOffset} within ${describeValue(timeout)} ms: process ${owner} holds it` +
        ' (is it stopped or stuck?); retry later or raise the timeout',
    );
  }
}
