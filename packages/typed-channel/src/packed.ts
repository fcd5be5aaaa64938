// Packed batches: many messages in one buffer with their boundaries in a Uint32Array, so that a batch crosses
// the native boundary as two values instead of one per message (sendPacked / recvPacked).
import { describeValue, InvalidArgumentError, TooLargeError } from '@libipc/shm';

/**
 * Messages packed one after another in one buffer: message `i` is `data.subarray(offsets[i], offsets[i + 1])`.
 * `offsets` has one entry more than there are messages (the last is where the last message ends).
 */
export interface PackedMessages {
  readonly data: Uint8Array;
  readonly offsets: Uint32Array;
}

/** How many messages a packed batch holds. */
export function packedCount(batch: PackedMessages): number {
  const offsets = (batch as PackedMessages | null | undefined)?.offsets;
  if (!(offsets instanceof Uint32Array)) {
    throw new InvalidArgumentError(`a packed batch must be { data: Uint8Array, offsets: Uint32Array }, got ${describeValue(batch)}`);
  }
  return Math.max(0, offsets.length - 1);
}

/** Packs messages (bytes, or strings as UTF-8) into one buffer. */
export function packMessages(messages: ReadonlyArray<Uint8Array | string>): PackedMessages {
  if (!Array.isArray(messages)) {
    throw new InvalidArgumentError(`messages must be an array of Uint8Array (or Buffer) or strings, got ${describeValue(messages)}`);
  }
  const parts = messages.map((m, i) => {
    if (m instanceof Uint8Array) return m;
    if (typeof m === 'string') return Buffer.from(m, 'utf8');
    throw new InvalidArgumentError(`messages[${i}] must be a Uint8Array (or Buffer) or a string, got ${describeValue(m)}`);
  });
  let total = 0;
  for (const part of parts) total += part.length;
  if (total > 0xffff_ffff) throw new InvalidArgumentError('a packed batch holds at most 4 GiB - 1 bytes; send it in several batches');
  const data = new Uint8Array(total);
  const offsets = new Uint32Array(parts.length + 1);
  packInto(parts, data, offsets);
  return { data, offsets };
}

/**
 * Copies messages one after another into `data` and their boundaries into `offsets` (the caller makes sure both
 * are large enough: count + 1 offsets, the messages' total bytes). Returns the bytes used.
 */
export function packInto(messages: ReadonlyArray<Uint8Array>, data: Uint8Array, offsets: Uint32Array): number {
  let at = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    offsets[i] = at;
    if (m.length > 0) data.set(m, at);
    at += m.length;
  }
  offsets[messages.length] = at;
  return at;
}

/** The messages of a packed batch as views into its buffer (no copy). */
export function unpackMessages(batch: PackedMessages): Uint8Array[] {
  const { data, offsets } = checkPacked(batch, Infinity);
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < offsets.length; i++) out.push(data.subarray(offsets[i]!, offsets[i + 1]!));
  return out;
}

/** Checks a packed batch's shape and bounds: offsets never go back, stay within data, no message over `max`. */
export function checkPacked(batch: unknown, maxMessage: number, what = 'a channel'): PackedMessages {
  const b = batch as PackedMessages | null | undefined;
  if (b === null || typeof b !== 'object' || !(b.data instanceof Uint8Array) || !(b.offsets instanceof Uint32Array)) {
    throw new InvalidArgumentError(
      `a packed batch must be { data: Uint8Array, offsets: Uint32Array } (see packMessages), got ${describeValue(batch)}`,
    );
  }
  const { data, offsets } = b;
  if (offsets.length === 0) throw new InvalidArgumentError('a packed batch needs offsets of length count + 1 (at least 1)');
  for (let i = 0; i + 1 < offsets.length; i++) {
    const len = offsets[i + 1]! - offsets[i]!;
    if (len < 0) throw new InvalidArgumentError(`packed batch: offsets[${i + 1}] (${offsets[i + 1]}) is before offsets[${i}] (${offsets[i]})`);
    if (len > maxMessage) {
      throw new TooLargeError(
        `packed batch: message ${i} has ${len} bytes, more than ${what}'s maxMessageSize (${maxMessage}); split it or raise maxMessageSize`,
      );
    }
  }
  if (offsets[offsets.length - 1]! > data.length) {
    throw new InvalidArgumentError(`packed batch: the last offset (${offsets[offsets.length - 1]}) is past the end of data (${data.length} bytes)`);
  }
  return b;
}
