import { describeValue } from './describe.js';
import { IllegalStateError, InvalidArgumentError, TimeoutError } from './errors.js';
import { MAX_TIMER_MS, option, parseOptions } from './options.js';
import type { SharedMemory } from './shared-memory.js';
import { translateNativeError } from './shared-memory.js';
import { validateOffset } from './validate.js';
import { wait, wake } from './wait.js';

/** Bytes a lease occupies in shared memory (8-byte aligned; layout in docs/layout.md). */
export const LEASE_SIZE = 96;
const WORD_OFFSET_FIELD = 64;
const NO_LEASE = 0xffffffff;

/**
 * 'held': a live thread holds it; 'released': its holder let go; 'owner-died': its holder thread died holding it
 * (the kernel said so, or its identity is gone); 'free': never taken (or cleared).
 */
export type LeaseState = 'free' | 'held' | 'released' | 'owner-died';

export interface LeaseWatchOptions {
  signal?: AbortSignal;
  /** Reject with ERR_LIBIPC_TIMEOUT when still held after this long (default: watch as long as it takes). */
  timeoutMs?: number;
  /** Keep the process alive while watching (default true). */
  ref?: boolean;
  /** Watch only this holder's tenure: once the lease has another holder (or none), resolve 'released'. */
  holder?: { pid: number; tid?: number };
}

const WATCH_OPTIONS = {
  signal: option.signal(),
  timeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }),
  ref: option.boolean(),
  holder: option.custom<{ pid: number; tid?: number }>(
    (v) => typeof v === 'object' && v !== null && Number.isInteger((v as { pid: unknown }).pid),
    'a holder { pid, tid? }',
  ),
};
// A watcher re-checks this often even without a wake-up: a holder that vanished without the kernel marking the
// word (its mapping torn down first) is then found by its identity.
const RECHECK_MS = 1000;

function checked(mem: SharedMemory, byteOffset: number): number {
  const offset = validateOffset(mem, byteOffset, 8);
  if (offset + LEASE_SIZE > mem.size) {
    throw new InvalidArgumentError(`a lease needs ${LEASE_SIZE} bytes: offset ${byteOffset} leaves only ${mem.size - offset} in segment ${mem.name}`);
  }
  return offset;
}

/**
 * A death lease (DESIGN.md): a liveness token in shared memory that the kernel breaks the moment its holder thread
 * dies — at the start of its exit, before a large process's memory is torn down — so watchers in other processes
 * learn of a crash in well under a millisecond. The holder is the JavaScript thread that called acquire(): a
 * lease taken in a worker thread dies with that worker. Underneath it is a process-shared robust mutex on the
 * thread's robust futex list; watchers sleep on its lock word (docs/layout.md, "Lease").
 */
export class Lease {
  readonly mem: SharedMemory;
  readonly byteOffset: number;
  #held = true;

  private constructor(mem: SharedMemory, byteOffset: number) {
    this.mem = mem;
    this.byteOffset = byteOffset;
  }

  /**
   * Takes the lease at `byteOffset` (96 bytes, 8-byte aligned) on the calling thread. ERR_LIBIPC_ILLEGAL_STATE when
   * another live thread holds it. The segment stays mapped while the lease is held, even after close().
   */
  static acquire(mem: SharedMemory, byteOffset: number): Lease {
    const offset = checked(mem, byteOffset);
    let taken: boolean;
    try {
      taken = mem.handle.leaseAcquire(offset);
    } catch (err) {
      translateNativeError(err, `lease at ${mem.name}+${offset}`);
    }
    if (!taken) {
      const [pid, tid] = mem.handle.leaseHolder(offset);
      throw new IllegalStateError(
        `the lease at ${mem.name}+${offset} is held by a live thread (pid ${pid}, tid ${tid}); watch it with Lease.watch, or use another one`,
      );
    }
    return new Lease(mem, offset);
  }

  /** Whether this handle still holds it. */
  get held(): boolean {
    return this.#held;
  }

  /** Lets go: watchers see 'released'. Call it on the thread that acquired it. Idempotent. */
  release(): void {
    if (!this.#held) return;
    if (!this.mem.handle.leaseRelease(this.byteOffset)) {
      throw new IllegalStateError(
        `the lease at ${this.mem.name}+${this.byteOffset} is not held by this thread (release it on the thread that acquired it)`,
      );
    }
    this.#held = false;
  }

  /** The lease's state now, without waiting. */
  static state(mem: SharedMemory, byteOffset: number): LeaseState {
    const offset = checked(mem, byteOffset);
    return mem.handle.leaseState(offset);
  }

  /** The recorded holder (pid and thread id), or undefined when nobody ever took it. */
  static holder(mem: SharedMemory, byteOffset: number): { pid: number; tid: number } | undefined {
    const offset = checked(mem, byteOffset);
    const [pid, tid] = mem.handle.leaseHolder(offset);
    return pid === 0 ? undefined : { pid, tid };
  }

  /** Marks the place as holding no lease (e.g. a record made for another process). Refused while held. */
  static clear(mem: SharedMemory, byteOffset: number): void {
    const offset = checked(mem, byteOffset);
    if (!mem.handle.leaseClear(offset)) {
      throw new IllegalStateError(`the lease at ${mem.name}+${offset} is held by a live thread; it cannot be cleared under it`);
    }
  }

  /**
   * Resolves when the lease is no longer held: 'released' (or at once when it was free or released) or
   * 'owner-died'. Any number of watchers in any processes; the kernel wakes one, which wakes the others.
   */
  static async watch(mem: SharedMemory, byteOffset: number, opts: LeaseWatchOptions = {}): Promise<'released' | 'owner-died'> {
    const offset = checked(mem, byteOffset);
    const o = parseOptions(opts, WATCH_OPTIONS, 'Lease.watch options');
    const deadline = performance.now() + (o.timeoutMs ?? Infinity);
    const onAbort = () => {
      // A wake-up of the word makes the pending wait return; the loop then sees the abort.
      const at = wordOffset(mem, offset);
      if (at !== undefined && !mem.isClosed) wake(mem, at);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (o.signal?.aborted) throw o.signal.reason;
        if (o.holder) {
          const [pid, tid] = mem.handle.leaseHolder(offset);
          if (pid !== o.holder.pid || (o.holder.tid !== undefined && tid !== o.holder.tid)) return 'released';
        }
        const prepared = mem.handle.leasePrepareWait(offset);
        if (typeof prepared === 'string') {
          if (prepared === 'held') continue; // changed hands between the two reads: look again
          const at = wordOffset(mem, offset);
          if (at !== undefined) wake(mem, at); // the kernel woke only one watcher: wake the rest
          return prepared === 'owner-died' ? 'owner-died' : 'released';
        }
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new TimeoutError(`the lease at ${mem.name}+${offset} is still held after ${describeValue(o.timeoutMs)} ms`);
        }
        const [word, value] = prepared;
        await wait(mem, word, value, Math.min(left, RECHECK_MS), { ref: o.ref ?? true });
      }
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** Where the lease's lock word is (it depends on the holder's C library), or undefined when there is no lease. */
function wordOffset(mem: SharedMemory, offset: number): number | undefined {
  const field = new DataView(mem.buffer).getUint32(offset + WORD_OFFSET_FIELD, true);
  return field === NO_LEASE || field > 60 || field % 4 !== 0 ? undefined : offset + field;
}
