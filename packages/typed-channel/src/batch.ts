// Batches: many messages per native call, as an array of Uint8Arrays or packed (one buffer and its offsets),
// sent under one lock with one wake-up, received in one call into the handle's slab.
import { describeValue, InvalidArgumentError, LaggedError, parseOptions, validateTimeout } from '@libipc/shm';
import type { Endpoint } from './core.js';
import { checkInt, MAX_BATCH, SEND_OPTIONS, type SendOptions, toBytes } from './options.js';
import { checkPacked, type PackedMessages, packInto } from './packed.js';
import { maybeReap } from './reap.js';
import { SLAB_BYTES } from './slab.js';

// sendMany copies a batch of at most this many bytes into one buffer and hands it over packed.
const PACK_BYTES = 64 * 1024;
const emptyPacked = (): PackedMessages => ({ data: new Uint8Array(0), offsets: Uint32Array.of(0) });

/** One handle's batch sends and receives, with the buffers they reuse from call to call. */
export class Batches {
  readonly #e: Endpoint;
  #packData: Uint8Array | undefined;
  #packOffsets = new Uint32Array(0);
  #starts = new Uint32Array(0);
  #lengths = new Uint32Array(0);

  constructor(e: Endpoint) {
    this.#e = e;
  }

  async recvMany(max: number, opts: SendOptions): Promise<Uint8Array[]> {
    this.#e.checkRecv();
    const limit = checkInt(max, 'max', 1, MAX_BATCH);
    const timeout = validateTimeout(parseOptions(opts, SEND_OPTIONS, 'recvMany options').timeoutMs);
    return (await this.#recvBatch(timeout, (spinUs) => this.#takeMany(spinUs, limit))) ?? [];
  }

  tryRecvMany(max: number): Uint8Array[] {
    this.#e.checkRecv();
    return this.#takeMany(0, checkInt(max, 'max', 1, MAX_BATCH)) ?? [];
  }

  async recvPacked(max: number, opts: SendOptions): Promise<PackedMessages> {
    this.#e.checkRecv();
    const limit = checkInt(max, 'max', 1, MAX_BATCH);
    const timeout = validateTimeout(parseOptions(opts, SEND_OPTIONS, 'recvPacked options').timeoutMs);
    return (await this.#recvBatch(timeout, (spinUs) => this.#takePacked(spinUs, limit))) ?? emptyPacked();
  }

  tryRecvPacked(max: number): PackedMessages {
    this.#e.checkRecv();
    return this.#takePacked(0, checkInt(max, 'max', 1, MAX_BATCH)) ?? emptyPacked();
  }

  async sendMany(messages: ReadonlyArray<Uint8Array | string>, opts: SendOptions): Promise<number> {
    const checked = this.#checkBatch(messages);
    // Our own copy of the list: the caller may reuse its array while the rest of the batch waits for room.
    const list = checked === messages ? checked.slice() : checked;
    const timeout = validateTimeout(parseOptions(opts, SEND_OPTIONS, 'sendMany options').timeoutMs);
    return this.#sendBatched(
      list.length,
      timeout,
      (from) => this.#trySendList(from === 0 ? list : list.slice(from), this.#e.spinUs),
      (i) => list[i]!,
    );
  }

  trySendMany(messages: ReadonlyArray<Uint8Array | string>): number {
    const list = this.#checkBatch(messages);
    if (this.#e.sendTail !== undefined) return 0;
    maybeReap(this.#e);
    return Math.max(0, this.#trySendList(list, 0));
  }

  async sendPacked(batch: PackedMessages, opts: SendOptions): Promise<number> {
    const e = this.#e;
    const { data, offsets } = this.#checkPackedSend(batch);
    const timeout = validateTimeout(parseOptions(opts, SEND_OPTIONS, 'sendPacked options').timeoutMs);
    return this.#sendBatched(
      offsets.length - 1,
      timeout,
      (from) => e.core.trySendPacked(data, from === 0 ? offsets : offsets.subarray(from), e.receives ? 1 : 0, e.spinUs),
      (i) => data.subarray(offsets[i]!, offsets[i + 1]!),
    );
  }

  trySendPacked(batch: PackedMessages): number {
    const e = this.#e;
    const { data, offsets } = this.#checkPackedSend(batch);
    if (e.sendTail !== undefined) return 0;
    maybeReap(e);
    return Math.max(0, e.core.trySendPacked(data, offsets, e.receives ? 1 : 0, 0));
  }

  // ---- sending ----

  /**
   * A batch of small messages goes to the native core packed into one reused buffer: copying a few bytes here
   * costs less than reading each message's Uint8Array through N-API. Larger batches go as the array itself.
   */
  #trySendList(list: Uint8Array[], spinUs: number): number {
    const e = this.#e;
    const self = e.receives ? 1 : 0;
    let total = 0;
    for (let i = 0; i < list.length; i++) total += list[i]!.length;
    if (total > PACK_BYTES) return e.core.trySendMany(list, self, spinUs);
    if (this.#packOffsets.length < list.length + 1) this.#packOffsets = new Uint32Array(Math.max(list.length + 1, 256));
    const data = (this.#packData ??= new Uint8Array(PACK_BYTES));
    packInto(list, data, this.#packOffsets);
    return e.core.trySendPacked(data, this.#packOffsets.subarray(0, list.length + 1), self, spinUs);
  }

  /**
   * The batch sends: as many as go now under one lock (`tryFrom(i)` sends from message i on); when the ring is
   * full, the lock busy or a message must stream, that message goes like send() and the batch resumes after it.
   */
  async #sendBatched(count: number, timeout: number, tryFrom: (from: number) => number, message: (i: number) => Uint8Array): Promise<number> {
    const e = this.#e;
    const deadline = performance.now() + timeout;
    let sent = 0;
    while (sent < count) {
      if (e.sendTail === undefined) {
        maybeReap(e);
        const n = tryFrom(sent);
        if (n === -1) return sent; // no receiver
        if (n > 0) {
          sent += n;
          continue;
        }
      }
      const left = Math.max(0, deadline - performance.now());
      if (!(await e.send(message(sent), { timeoutMs: timeout === Infinity ? Infinity : left }))) break;
      sent++;
    }
    return sent;
  }

  /** The batch as bytes: the caller's own array when it holds only Uint8Arrays, else a copy with strings encoded. */
  #checkBatch(messages: unknown): Uint8Array[] {
    const e = this.#e;
    e.checkSender();
    if (!Array.isArray(messages)) {
      throw new InvalidArgumentError(`messages must be an array of Uint8Array (or Buffer) or strings, got ${describeValue(messages)}`);
    }
    let encoded: Uint8Array[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const m: unknown = messages[i];
      if (m instanceof Uint8Array && encoded === undefined) {
        e.checkSize(m);
        continue;
      }
      encoded ??= messages.slice(0, i) as Uint8Array[];
      encoded.push(e.checkSize(toBytes(m)));
    }
    return encoded ?? (messages as Uint8Array[]);
  }

  #checkPackedSend(batch: unknown): PackedMessages {
    this.#e.checkSender();
    return checkPacked(batch, this.#e.maxMessageSize, `${this.#e.what()} ${this.#e.name}`);
  }

  // ---- receiving ----

  /** A batch now (spinning first) or, queued behind earlier receives of this handle, once one arrives. */
  async #recvBatch<T>(timeout: number, take: (spinUs: number) => T | undefined): Promise<T | undefined> {
    const e = this.#e;
    if (e.recvTail === undefined) {
      const batch = take(e.spinUs);
      if (batch !== undefined || timeout === 0) return batch;
    }
    return e.queueRecv(timeout, take);
  }

  /**
   * One native batch receive into the slab: the messages' starts (relative to `start`) and, with `align` 8, their
   * lengths; or one message assembled from fragments; undefined when nothing came within spinUs.
   */
  #takeBatch(spinUs: number, max: number, align: 1 | 8): { start: number; n: number } | Uint8Array | undefined {
    const e = this.#e;
    const slab = e.slab;
    if (this.#starts.length < max + 1) {
      this.#starts = new Uint32Array(max + 1);
      this.#lengths = new Uint32Array(max);
    }
    // Room for the whole batch when the slots are small; a short slab just makes a shorter batch.
    slab.room(Math.min(max * (e.slotSize - e.layout.slotHeader), SLAB_BYTES / 2));
    const start = slab.offset;
    const r = e.core.recvPacked(max, slab.buffer, start, this.#starts, align, spinUs, align === 8 ? this.#lengths : undefined);
    if (typeof r !== 'number') return r;
    if (r < 0) throw new LaggedError(-2 - r);
    if (r === 0) return undefined;
    slab.offset = (start + this.#starts[r]! + 7) & ~7;
    return { start, n: r };
  }

  #takeMany(spinUs: number, max: number): Uint8Array[] | undefined {
    const got = this.#takeBatch(spinUs, max, 8);
    if (got === undefined || got instanceof Uint8Array) return got && [got];
    const buffer = this.#e.slab.buffer;
    const out = new Array<Uint8Array>(got.n);
    for (let i = 0; i < got.n; i++) out[i] = new Uint8Array(buffer, got.start + this.#starts[i]!, this.#lengths[i]!);
    return out;
  }

  #takePacked(spinUs: number, max: number): PackedMessages | undefined {
    const got = this.#takeBatch(spinUs, max, 1);
    if (got === undefined || got instanceof Uint8Array) return got && { data: got, offsets: Uint32Array.of(0, got.length) };
    return { data: new Uint8Array(this.#e.slab.buffer, got.start, this.#starts[got.n]!), offsets: this.#starts.slice(0, got.n + 1) };
  }
}
