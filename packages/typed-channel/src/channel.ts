// The public Channel and Route: what a user calls. Each call goes to the handle's parts: core.ts (one message in,
// one out, joining and leaving), batch.ts (batches and packed batches), waiting.ts, slab.ts, reap.ts.
import { SharedMemory, validateName } from '@libipc/shm';
import { readdirSync } from 'node:fs';
import { Batches } from './batch.js';
import { Endpoint } from './core.js';
import type { ChannelOptions, Mode, OnFull, RecvOptions, SendOptions } from './options.js';
import type { PackedMessages } from './packed.js';
import { BELL_DIR, bellPrefix, KIND, removeBell, TYPE_CHANNEL, TYPE_ROUTE } from './segment.js';

/**
 * What Channel and Route share: a handle on `libipc.chan.<name>` (layout: docs/channel-layout.md). Every
 * handle owns one row of the segment's identity table; a receiver's row also holds its read cursor.
 */
abstract class ChannelBase {
  readonly name: string;
  readonly mode: Mode;
  readonly onFull: OnFull;
  readonly capacity: number;
  readonly slotSize: number;
  readonly maxMessageSize: number;
  readonly spinUs: number;

  readonly #e: Endpoint;
  readonly #batches: Batches;

  protected constructor(type: number, name: string, given: ChannelOptions) {
    const e = new Endpoint(type, name, given);
    this.#e = e;
    this.#batches = new Batches(e);
    this.name = e.name;
    this.mode = e.mode;
    this.onFull = e.onFull;
    this.capacity = e.capacity;
    this.slotSize = e.slotSize;
    this.maxMessageSize = e.maxMessageSize;
    this.spinUs = e.spinUs;
  }

  /** Live receivers connected now (a dead one stops counting at once, even before it is reaped). */
  get recvCount(): number {
    return this.#e.recvCount();
  }

  get isClosed(): boolean {
    return this.#e.closed;
  }

  /**
   * Sends to every receiver connected now. Resolves false at once when there is none. When the ring is full,
   * 'wait' mode waits (without blocking the event loop) for the slowest live receiver and rejects with
   * ERR_LIBIPC_TIMEOUT at timeoutMs; 'lag' mode overwrites the oldest messages.
   */
  send(data: Uint8Array | string, opts?: SendOptions): Promise<boolean> {
    return this.#e.send(data, opts);
  }

  /** Sends only if it can right now: false when no receiver, the ring is full, or another sender is mid-message. */
  trySend(data: Uint8Array | string): boolean {
    return this.#e.trySend(data);
  }

  /**
   * The next message, or undefined on timeout or close. Rejects with ERR_LIBIPC_LAGGED (`.missed`) once after
   * this receiver fell behind in 'lag' mode; the next recv continues with the oldest message still held.
   */
  recv(opts?: RecvOptions): Promise<Uint8Array | undefined> {
    return this.#e.recv(opts);
  }

  /**
   * Every message available now, up to `max` (default 64): waits (like recv) until at least one arrives, then
   * returns them all at once — one native call for the batch. An empty array on timeout or close. A lag in
   * 'lag' mode ends the batch; the next call throws ERR_LIBIPC_LAGGED.
   */
  recvMany(max = 64, opts: Omit<RecvOptions, 'copy'> = {}): Promise<Uint8Array[]> {
    return this.#batches.recvMany(max, opts);
  }

  /** Every message available now, up to `max` (default 64), without waiting (throws LaggedError like recv). */
  tryRecvMany(max = 64): Uint8Array[] {
    return this.#batches.tryRecvMany(max);
  }

  /**
   * Like recvMany, but the batch comes packed: the messages one after another in one buffer, their boundaries in
   * a Uint32Array (see PackedMessages) — one native call and two JS objects per batch, none per message. Waits
   * until at least one message arrives; an empty batch (offsets [0]) on timeout or close.
   */
  recvPacked(max = 1024, opts: Omit<RecvOptions, 'copy'> = {}): Promise<PackedMessages> {
    return this.#batches.recvPacked(max, opts);
  }

  /** The messages available now, up to `max` (default 1024), packed (see recvPacked); never waits. */
  tryRecvPacked(max = 1024): PackedMessages {
    return this.#batches.tryRecvPacked(max);
  }

  /** A message if one is here now, else undefined (throws LaggedError like recv). `{ copy: false }`: see recv. */
  tryRecv(opts?: { copy?: boolean }): Uint8Array | undefined {
    return this.#e.tryRecv(opts);
  }

  /**
   * Sends several messages as one batch: under one lock, each whole and published in order, with one wake-up of
   * sleeping receivers. Resolves how many were sent (all of them, unless there is no receiver: then 0, or the
   * handle closes). A ring that fills mid-batch makes the rest wait like send(); a sender killed mid-batch has
   * delivered a prefix of whole messages.
   */
  sendMany(messages: ReadonlyArray<Uint8Array | string>, opts: SendOptions = {}): Promise<number> {
    return this.#batches.sendMany(messages, opts);
  }

  /** Sends what it can of the batch right now (a prefix, under one lock, one wake-up); returns how many. */
  trySendMany(messages: ReadonlyArray<Uint8Array | string>): number {
    return this.#batches.trySendMany(messages);
  }

  /**
   * Sends a packed batch (see packMessages and PackedMessages) with sendMany's guarantees: the batch crosses into
   * the native core as one buffer and one Uint32Array, not as a value per message. Resolves how many were sent.
   */
  sendPacked(batch: PackedMessages, opts: SendOptions = {}): Promise<number> {
    return this.#batches.sendPacked(batch, opts);
  }

  /** Sends what it can of a packed batch right now (a prefix, under one lock, one wake-up); returns how many. */
  trySendPacked(batch: PackedMessages): number {
    return this.#batches.trySendPacked(batch);
  }

  /** Every message until close(), drained in batches (one native call per batch). */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.#e.closed) return;
      const batch = await this.recvMany(64);
      if (batch.length === 0) return;
      for (const msg of batch) yield msg;
    }
  }

  /** Waits until at least `count` live receivers are connected; false at the timeout. */
  waitForRecv(count: number, opts: { timeoutMs?: number } = {}): Promise<boolean> {
    return this.#e.waitForRecv(count, opts);
  }

  /**
   * Leaves the channel: a receiver stops counting at once; the last handle removes the segment. Pending recv
   * calls resolve undefined, pending sends reject with ERR_LIBIPC_CLOSED. Idempotent.
   */
  close(): void {
    this.#e.close();
  }

  /** Removes a channel's shared-memory object left by crashed processes. Live handles keep their mapping. */
  static clearStorage(name: string): void {
    validateName(name, 'channel name');
    SharedMemory.unlink(name, { kind: KIND });
    const bells = bellPrefix(name).slice(BELL_DIR.length + 1);
    for (const f of readdirSync(BELL_DIR)) {
      if (f.startsWith(bells) && /^\d+$/.test(f.slice(bells.length))) removeBell(`${BELL_DIR}/${f}`);
    }
  }
}

/** Many senders, many receivers: every receiver gets every message sent after it connected. */
export class Channel extends ChannelBase {
  constructor(name: string, opts: ChannelOptions = {}) {
    super(TYPE_CHANNEL, name, opts);
  }
}

/** One sender at a time (a dead sender's seat is taken over), many receivers. */
export class Route extends ChannelBase {
  constructor(name: string, opts: ChannelOptions = {}) {
    super(TYPE_ROUTE, name, opts);
  }
}
