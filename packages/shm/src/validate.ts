import { InvalidArgumentError } from './errors.js';
import { describeValue, MAX_TIMER_MS } from './options.js';
import { SharedMemory } from './shared-memory.js';

/**
 * A timeout in ms: undefined, null or Infinity wait forever; anything else must be a number from 0 to
 * MAX_TIMER_MS (about 24.8 days: Node's timers treat more as 1 ms, so it is refused, never clamped).
 */
export function validateTimeout(timeoutMs: unknown, what = 'timeoutMs'): number {
  if (typeof what !== 'string') what = 'timeoutMs';
  if (timeoutMs === undefined || timeoutMs === null || timeoutMs === Infinity) return Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`${what} must be a number of ms from 0 to ${MAX_TIMER_MS} (or Infinity), got ${describeValue(timeoutMs)}`);
  }
  return timeoutMs;
}

/** The segment argument must be a SharedMemory of this package. */
export function validateMemory(mem: unknown): asserts mem is SharedMemory {
  if (!(mem instanceof SharedMemory)) {
    throw new InvalidArgumentError(`expected a SharedMemory (from SharedMemory.create/open), got ${describeValue(mem)}`);
  }
}

/** A byte offset of a `width`-byte word inside the segment, aligned to `width`. */
export function validateOffset(mem: SharedMemory, byteOffset: unknown, width: number): number {
  validateMemory(mem);
  mem.assertOpen();
  if (typeof byteOffset !== 'number' || !Number.isInteger(byteOffset)) {
    throw new InvalidArgumentError(`byteOffset must be a whole number, got ${describeValue(byteOffset)}`);
  }
  if (byteOffset < 0 || byteOffset + width > mem.size) {
    throw new InvalidArgumentError(
      `byteOffset ${byteOffset} is outside segment ${mem.name}: a ${width}-byte word must lie within 0..${mem.size - width}`,
    );
  }
  if (byteOffset % width !== 0) {
    throw new InvalidArgumentError(`byteOffset ${byteOffset} must be a multiple of ${width}`);
  }
  return byteOffset;
}
