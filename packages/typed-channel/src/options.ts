// The options of a Channel or Route and of its calls: their types, their checks, and their defaults.
import { InvalidArgumentError, MAX_TIMER_MS, option, parseOptions } from '@libipc/shm';
import { native } from './native.js';

export type Mode = 'sender' | 'receiver';
export type OnFull = 'wait' | 'lag';

export interface ChannelOptions {
  /** 'sender' (default) only sends; 'receiver' receives every message sent after it connected (and may send). */
  mode?: Mode;
  /** Slots in the ring (default 512). Fixed by whoever creates the channel. */
  capacity?: number;
  /** Bytes per slot including its 32-byte header, a multiple of 64 (default 4160: a 4 KiB message fits in one). */
  slotSize?: number;
  /** Largest message in bytes (default 16 MiB; in 'lag' mode at most what the ring holds). */
  maxMessageSize?: number;
  /** How long recv spins for an active sender before it sleeps, in µs (default 50). */
  spinUs?: number;
  /** What a sender does when the slowest receiver has not made room: 'wait' (default) or 'lag'. */
  onFull?: OnFull;
  /** Other uids whose channel segment this process may join (default: only its own uid's; docs/security.md). */
  allowUsers?: number[];
}

export interface SendOptions {
  /** Give up with ERR_LIBIPC_TIMEOUT when still full after this long (default: wait as long as it takes). */
  timeoutMs?: number;
}
export interface RecvOptions {
  /** Resolve undefined when nothing arrived within this long (default: wait until a message or close()). */
  timeoutMs?: number;
  /**
   * false: read the message in place — a view of the ring itself, no copy — valid until the next receive (or
   * close()) on this handle; after that the view is detached, so using it throws a TypeError instead of showing
   * other bytes. Only in 'wait' mode (in 'lag' mode a sender may overwrite the slot at any time). Messages larger
   * than a slot are assembled into their own buffer either way. Default true (a copy that stays valid).
   */
  copy?: boolean;
}

/** A handle's options with every default filled in. */
export interface Resolved {
  mode: Mode;
  capacity: number;
  slotSize: number;
  maxMessageSize: number;
  spinUs: number;
  onFull: OnFull;
}

const MiB = 1024 * 1024;
const DEFAULTS = { capacity: 512, slotSize: 4160, maxMessageSize: 16 * MiB, spinUs: 50 };

/** The options a Channel or Route takes (TypedChannel adds its own). */
export const CHANNEL_OPTIONS = {
  mode: option.oneOf('sender', 'receiver'),
  capacity: option.int(1, 1 << 20),
  slotSize: option.int(64, 1 << 30),
  maxMessageSize: option.int(0, 2 ** 31 - 1),
  spinUs: option.number(0, 1_000_000),
  onFull: option.oneOf('wait', 'lag'),
  allowUsers: option.custom<number[]>(
    (v) => Array.isArray(v) && v.length <= 1024 && v.every((u) => Number.isInteger(u) && u >= 0 && u <= 2 ** 32 - 1),
    'an array of uids (whole numbers)',
  ),
};
export const SEND_OPTIONS = { timeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }) };
export const RECV_OPTIONS = { ...SEND_OPTIONS, copy: option.boolean() };
export const NO_OPTIONS: { timeoutMs?: number; copy?: boolean } = Object.freeze({});
export const TRY_RECV_OPTIONS = { copy: option.boolean() };
export const WAIT_FOR_RECV_OPTIONS = SEND_OPTIONS;
/** Most messages one recvMany or recvPacked call returns. */
export const MAX_BATCH = 65_536;

/** The explicitly given options (absent, undefined and null alike mean "default"), checked. */
export function parseChannelOptions(opts: unknown): Partial<ChannelOptions> {
  return parseOptions(opts, CHANNEL_OPTIONS, 'Channel options');
}

export function resolveOptions(o: Partial<ChannelOptions>): Resolved {
  const mode = o.mode ?? 'sender';
  const onFull = o.onFull ?? 'wait';
  const capacity = o.capacity ?? DEFAULTS.capacity;
  const slotSize = o.slotSize ?? DEFAULTS.slotSize;
  if (slotSize % 64 !== 0) throw new InvalidArgumentError(`Channel options: slotSize must be a multiple of 64, got ${slotSize}`);
  const ringPayload = capacity * (slotSize - native().layout.slotHeader);
  const defaultMax = onFull === 'lag' ? Math.min(DEFAULTS.maxMessageSize, ringPayload) : DEFAULTS.maxMessageSize;
  const maxMessageSize = o.maxMessageSize ?? defaultMax;
  if (onFull === 'lag' && maxMessageSize > ringPayload) {
    throw new InvalidArgumentError(
      `in 'lag' mode a message must fit in the ring (${ringPayload} bytes with capacity ${capacity} x slotSize ${slotSize}); ` +
        'raise capacity or slotSize, or lower maxMessageSize',
    );
  }
  return { mode, capacity, slotSize, maxMessageSize, spinUs: o.spinUs ?? DEFAULTS.spinUs, onFull };
}

export function checkInt(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** Turns send's argument into bytes: a Uint8Array as is, a string as UTF-8. */
export function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  throw new InvalidArgumentError(
    `data must be a Uint8Array (or Buffer) or a string, got ${data === null ? 'null' : typeof data}; encode it first`,
  );
}
