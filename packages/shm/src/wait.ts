import { ClosedError, InvalidArgumentError } from './errors.js';
import { option, parseOptions } from './options.js';
import { native, type WaitOutcome } from './native.js';
import { translateNativeError } from './shared-memory.js';
import type { SharedMemory } from './shared-memory.js';
import { validateOffset, validateTimeout } from './validate.js';

export interface WaitOptions {
  /** Spin this many microseconds on the word before sleeping (an active peer answers faster than a wake-up). */
  spinUs?: number;
  /** Keep the process alive while waiting (default true); false: like an unref'd timer. */
  ref?: boolean;
}

const WAIT_OPTIONS = { spinUs: option.number(0, 1_000_000), ref: option.boolean() };

function toUint32(expected: unknown): number {
  if (typeof expected !== 'number' || !Number.isInteger(expected) || expected < -(2 ** 31) || expected > 2 ** 32 - 1) {
    throw new InvalidArgumentError(`expected must be a 32-bit integer, got ${String(expected)}`);
  }
  return expected >>> 0;
}

/**
 * How `wait` sleeps in this process: 'io_uring' — the kernel waits on the futex and signals an fd the event
 * loop polls (Linux 6.7+), so a wake-up reaches JavaScript in one hop — or 'threads', the fallback: one of
 * the addon's own threads sleeps in futex_wait and hands the result to the loop. LIBIPC_WAIT_BACKEND=threads
 * forces the fallback.
 */
export function waitBackend(): 'io_uring' | 'threads' {
  return native().waitBackend;
}

/**
 * Waits, without blocking the event loop, while the 32-bit word at `byteOffset` equals `expected`, until
 * another process calls `wake` on it. Like Atomics.wait: 'ok' (woken; re-check your condition),
 * 'not-equal' (the word had already changed) or 'timed-out'. Waits never sit on libuv's threadpool
 * (see waitBackend).
 */
export async function wait(
  mem: SharedMemory,
  byteOffset: number,
  expected: number,
  timeoutMs?: number,
  opts: WaitOptions = {},
): Promise<WaitOutcome> {
  const offset = validateOffset(mem, byteOffset, 4);
  const value = toUint32(expected);
  const timeout = validateTimeout(timeoutMs);
  const o = parseOptions(opts, WAIT_OPTIONS, 'wait options');
  const spinUs = o.spinUs ?? 0;
  let outcome: WaitOutcome | 'closed';
  try {
    outcome = await new Promise<WaitOutcome | 'closed'>((resolve) => {
      const now = mem.handle.waitAsync(offset, value, timeout, spinUs, resolve, o.ref ?? true);
      if (now !== 'pending') resolve(now);
    });
  } catch (err) {
    // No thread could take the wait (the process is at its thread limit): a coded error, never an abort.
    translateNativeError(err, `wait on segment ${mem.name}`);
  }
  if (outcome === 'closed') throw new ClosedError(`segment ${mem.name} was closed while waiting`);
  return outcome;
}

/** Synchronous, bounded wait for short waits in synchronous code: the timeout is required. */
export function waitSync(mem: SharedMemory, byteOffset: number, expected: number, timeoutMs: number): WaitOutcome {
  const offset = validateOffset(mem, byteOffset, 4);
  const value = toUint32(expected);
  const timeout = validateTimeout(timeoutMs);
  if (!Number.isFinite(timeout)) {
    throw new InvalidArgumentError('waitSync needs a finite timeoutMs: a synchronous wait must be bounded');
  }
  return mem.handle.waitSync(offset, value, timeout);
}

/** Wakes up to `count` waiters (in any process) on the word at `byteOffset`; returns how many woke. */
export function wake(mem: SharedMemory, byteOffset: number, count = Infinity): number {
  const offset = validateOffset(mem, byteOffset, 4);
  if (typeof count !== 'number' || Number.isNaN(count) || count < 0 || (!Number.isInteger(count) && count !== Infinity)) {
    throw new InvalidArgumentError(`count must be a whole number >= 0 (or Infinity), got ${String(count)}`);
  }
  return mem.handle.wake(offset, count);
}
