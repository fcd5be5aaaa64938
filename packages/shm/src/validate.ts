import { InvalidArgumentError } from './errors.js';
import type { SharedMemory } from './shared-memory.js';

/** A timeout in ms: undefined or Infinity wait forever; anything else must be a number >= 0. */
export function validateTimeout(timeoutMs: unknown, what = 'timeoutMs'): number {
  if (timeoutMs === undefined || timeoutMs === Infinity) return Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new InvalidArgumentError(`${what} must be a number >= 0 (or Infinity), got ${String(timeoutMs)}`);
  }
  return timeoutMs;
}

/** A byte offset of a `width`-byte word inside the segment, aligned to `width`. */
export function validateOffset(mem: SharedMemory, byteOffset: unknown, width: number): number {
  mem.assertOpen();
  if (typeof byteOffset !== 'number' || !Number.isInteger(byteOffset)) {
    throw new InvalidArgumentError(`byteOffset must be a whole number, got ${String(byteOffset)}`);
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
