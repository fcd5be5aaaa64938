import {
  attachSegment,
  ClosedError,
  ExistsError,
  IdentityTable,
  IllegalStateError,
  IncompatibleError,
  InvalidArgumentError,
  isAlive,
  describeValue,
  LaggedError,
  MAX_TIMER_MS,
  option,
  parseOptions,
  RegistryFullError,
  RobustMutex,
  type SegmentHeader,
  SharedMemory,
  TimeoutError,
  TooLargeError,
  selfIdentity,
  translateNativeError,
  validateName,
  validateTimeout,
  wait,
  wake,
  watchExit,
} from '@libipc/shm';
import { readdirSync, unlinkSync } from 'node:fs';
import { type ChannelLayout, native, type NativeChannelCore, type NativeDoorbell, SendStatus } from './native.js';
import { checkPacked, type PackedMessages, packInto } from './packed.js';

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

const KIND = 'chan';
// Receivers' doorbells: FIFOs /dev/shm/libipc.chanbell.<name>.<row> (another kind, so never a segment's name).
const BELL_DIR = '/dev/shm';
const bellPrefix = (name: string) => `${BELL_DIR}/libipc.chanbell.${name}.`;

/**
 * Removes a doorbell FIFO without stat'ing it: rmSync would lstat it, leaving S_IFIFO in Node's shared stat
 * buffer, which Node 20's realpathSync reads for cached path components, so a later require() through a
 * symlink (pnpm's node_modules) would stop resolving.
 */
function removeBell(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
const TYPE_CHANNEL = 1;
const TYPE_ROUTE = 2;
const ROLE_SENDER = 1;
const ROLE_RECEIVER = 2;
const SLEEP_SEND = 2;
const MiB = 1024 * 1024;
const DEFAULTS = { capacity: 512, slotSize: 4160, maxMessageSize: 16 * MiB, spinUs: 50 };
// Structure changes (attach, close, reap) take the segment lock for microseconds; a stopped holder must not
// freeze us, so the synchronous wait is bounded.
const LOCK_MS = 2000;
// A dead receiver that is not the slowest is found at the latest this often by a sender.
const REAP_EVERY_MS = 500;
// Received one-slot messages are views into slabs of this size (like Buffer.allocUnsafe's pool): one
// allocation per many messages instead of one each.
const SLAB_BYTES = 256 * 1024;
const WAKE_CHECK_MS = 1000;
const FIRST_WAIT_MS = 20;

// Handles still open when the process (or worker) exits normally are closed then, so that a program that
// forgets close() still leaves nothing behind; a killed process is reaped by the next user instead.
const openHandles = new Set<{ close(): void }>();
let exitHookInstalled = false;
function trackOpen(handle: { close(): void }): void {
  openHandles.add(handle);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const h of [...openHandles]) {
      try {
        h.close();
      } catch {
        // exiting anyway: what could not be closed is reaped by the next user
      }
    }
  });
}

function checkInt(value: unknown, what: string, min: number, max: number): number {
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

interface Resolved {
  mode: Mode;
  capacity: number;
  slotSize: number;
  maxMessageSize: number;
  spinUs: number;
  onFull: OnFull;
}

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
const SEND_OPTIONS = { timeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }) };
const RECV_OPTIONS = { ...SEND_OPTIONS, copy: option.boolean() };
const NO_OPTIONS: { timeoutMs?: number; copy?: boolean } = Object.freeze({});
const ignore = (): undefined => undefined;
const TRY_RECV_OPTIONS = { copy: option.boolean() };
const WAIT_FOR_RECV_OPTIONS = SEND_OPTIONS;
/** Most messages one recvMany or recvPacked call returns. */
const MAX_BATCH = 65_536;
// sendMany copies a batch of at most this many bytes into one buffer and hands it over packed.
const PACK_BYTES = 64 * 1024;
const emptyPacked = (): PackedMessages => ({ data: new Uint8Array(0), offsets: Uint32Array.of(0) });

/** The explicitly given options (absent, undefined and null alike mean "default"), checked. */
export function parseChannelOptions(opts: unknown): Partial<ChannelOptions> {
  return parseOptions(opts, CHANNEL_OPTIONS, 'Channel options');
}

function resolveOptions(o: Partial<ChannelOptions>): Resolved {
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

/**
 * What Channel and Route share: a handle on `libipc.chan.<name>` (layout: docs/channel-layout.md). Every
 * handle owns one row of the segment's identity table; a receiver's row also holds its read cursor.
 */
abstract class ChannelBase {
  readonly name: string;
  readonly mode: Mode;
  readonly onFull!: OnFull;
  readonly capacity!: number;
  readonly slotSize!: number;
  readonly maxMessageSize!: number;
  readonly spinUs: number;

  readonly #type: number;
  readonly #mem!: SharedMemory;
  readonly #header!: SegmentHeader;
  readonly #table!: IdentityTable;
  readonly #core!: NativeChannelCore;
  readonly #words!: Int32Array;
  readonly #view!: DataView;
  readonly #sendLock!: RobustMutex;
  readonly #layout: ChannelLayout;
  readonly #row!: number;
  readonly #receives: boolean;
  #closed = false;
  #holdingSendLock = false;
  #sleeping = 0;
  #lastReap = 0;
  #sendsSinceReapCheck = 0;
  #slab = new ArrayBuffer(0);
  #bell: NativeDoorbell | undefined;
  #bellWaiting: ((outcome: 'ok' | 'timed-out' | 'closed') => void) | undefined;
  #sliceTimer: NodeJS.Timeout | undefined;
  #slabOffset = 0;
  #packData: Uint8Array | undefined;
  #packOffsets = new Uint32Array(0);
  #starts = new Uint32Array(0);
  #lengths = new Uint32Array(0);
  #sendTail: Promise<unknown> | undefined;
  #recvTail: Promise<unknown> | undefined;

  protected constructor(type: number, name: string, given: ChannelOptions) {
    validateName(name, 'channel name');
    const opts = parseChannelOptions(given);
    const o = resolveOptions(opts);
    const bin = native();
    const layout = bin.layout;
    this.#layout = layout;
    this.#type = type;
    this.name = name;
    this.mode = o.mode;
    this.spinUs = o.spinUs;
    this.#receives = o.mode === 'receiver';
    const what = type === TYPE_ROUTE ? 'route' : 'channel';

    for (let attempt = 0; ; attempt++) {
      const { mem, header } = attachSegment({
        kind: KIND,
        name,
        layoutVersion: layout.version,
        size: bin.segmentSize(o.capacity, o.slotSize),
        init: (m) => bin.init(m.buffer, type, o.onFull === 'lag' ? 1 : 0, o.capacity, o.slotSize, o.maxMessageSize),
        allowUsers: opts.allowUsers,
      });
      const view = new DataView(mem.buffer);
      let existing: Omit<Resolved, 'mode' | 'spinUs'>;
      try {
        existing = ChannelBase.#check(mem, view, layout, type, name, opts);
        header.lock.lockSync(LOCK_MS);
      } catch (err) {
        mem.close();
        throw err;
      }
      if (header.state === 'retired') {
        // Its last user is removing it: join the one that replaces it.
        header.lock.unlock();
        mem.close();
        if (attempt > 50) throw new TimeoutError(`${what} ${name} keeps being removed while we attach; retry later`);
        continue;
      }
      this.onFull = existing.onFull;
      this.capacity = existing.capacity;
      this.slotSize = existing.slotSize;
      this.maxMessageSize = existing.maxMessageSize;
      this.#mem = mem;
      this.#header = header;
      this.#view = view;
      this.#words = new Int32Array(mem.buffer, 0, layout.ring / 4);
      this.#table = new IdentityTable(mem, layout.identities, layout.maxHandles);
      this.#sendLock = new RobustMutex(mem, layout.sendLock);
      let row = -1;
      try {
        this.#reapLocked();
        row = this.#table.add(this.#receives ? ROLE_RECEIVER : ROLE_SENDER);
        if (row < 0) {
          throw new RegistryFullError(`${what} ${name} already has ${layout.maxHandles} handles attached; close some first`);
        }
        if (type === TYPE_ROUTE && !this.#receives) this.#claimRoute(row);
        this.#row = row;
        this.#core = new bin.ChannelCore(mem.buffer, row, bellPrefix(name), mem.objectName, mem.handle.dev, mem.inode);
        if (this.#receives) {
          try {
            this.#bell = new bin.Doorbell(`${bellPrefix(name)}${row}`);
          } catch (err) {
            translateNativeError(err, `doorbell of ${what} ${name}`); // ENOSPC → ERR_LIBIPC_NO_SPACE, …
          }
          this.#core.activate();
        }
        this.#bump(layout.membership);
        trackOpen(this);
      } catch (err) {
        if (this.#bell) this.#closeBell();
        this.#core?.close(); // before the row is freed: its clean-up hook must not touch a row that is not ours
        if (row >= 0) this.#table.remove(row);
        if (this.#table.used().length === 0) header.retire();
        header.lock.unlock();
        mem.close();
        throw err;
      }
      header.lock.unlock();
      return;
    }
  }

  /** Checks a joined segment: a valid control block, the same class, and no explicit option that differs. */
  static #check(mem: SharedMemory, view: DataView, layout: ChannelLayout, type: number, name: string, opts: Partial<ChannelOptions>) {
    if (!native().valid(mem.buffer)) {
      throw new IncompatibleError(
        `segment libipc.${KIND}.${name} is not a valid channel (corrupt control block); Channel.clearStorage('${name}') removes it`,
      );
    }
    const existing = {
      type: view.getUint32(layout.type, true),
      onFull: (view.getUint32(layout.onFull, true) === 1 ? 'lag' : 'wait') as OnFull,
      capacity: view.getUint32(layout.capacity, true),
      slotSize: view.getUint32(layout.slotSize, true),
      maxMessageSize: view.getUint32(layout.maxMessage, true),
    };
    const cls = (t: number) => (t === TYPE_ROUTE ? 'Route' : 'Channel');
    if (existing.type !== type) {
      throw new IncompatibleError(`libipc.${KIND}.${name} is a ${cls(existing.type)}, not a ${cls(type)}; use the same class on both sides`);
    }
    for (const key of ['onFull', 'capacity', 'slotSize', 'maxMessageSize'] as const) {
      if (opts[key] !== undefined && opts[key] !== existing[key]) {
        throw new IncompatibleError(
          `${cls(type)} ${name} exists with ${key} ${String(existing[key])}, not ${String(opts[key])}; omit ${key} to join it as it is`,
        );
      }
    }
    return existing;
  }

  /** Live receivers connected now (a dead one stops counting at once, even before it is reaped). */
  get recvCount(): number {
    if (this.#closed) return 0;
    let n = 0;
    for (const row of this.#table.used()) {
      if (this.#core.isActive(row) && this.#table.isLive(row)) n++;
    }
    return n;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Sends to every receiver connected now. Resolves false at once when there is none. When the ring is full,
   * 'wait' mode waits (without blocking the event loop) for the slowest live receiver and rejects with
   * ERR_LIBIPC_TIMEOUT at timeoutMs; 'lag' mode overwrites the oldest messages.
   */
  async send(data: Uint8Array | string, opts?: SendOptions): Promise<boolean> {
    const bytes = this.#checkSend(data);
    // No options (the hot path): nothing to check.
    const timeout = opts === undefined ? Infinity : validateTimeout(parseOptions(opts, SEND_OPTIONS, 'send options').timeoutMs);
    const deadline = performance.now() + timeout;
    this.#maybeReap();
    if (this.#sendTail === undefined) {
      const st = this.#core.trySend(bytes, this.#receives ? 1 : 0, this.spinUs);
      if (st === SendStatus.Sent) return true;
      if (st === SendStatus.NoReceiver) return false;
    }
    // Sends of one handle go out in call order.
    const prev = this.#sendTail;
    const mine = (async () => {
      if (prev) await prev;
      return this.#sendSlow(bytes, deadline, timeout);
    })();
    const tail = mine.then(ignore, ignore);
    this.#sendTail = tail;
    try {
      return await mine;
    } finally {
      if (this.#sendTail === tail) this.#sendTail = undefined;
    }
  }

  /** Sends only if it can right now: false when no receiver, the ring is full, or another sender is mid-message. */
  trySend(data: Uint8Array | string): boolean {
    const bytes = this.#checkSend(data);
    if (this.#sendTail !== undefined) return false;
    this.#maybeReap();
    return this.#core.trySend(bytes, this.#receives ? 1 : 0, 0) === SendStatus.Sent;
  }

  /**
   * The next message, or undefined on timeout or close. Rejects with ERR_LIBIPC_LAGGED (`.missed`) once after
   * this receiver fell behind in 'lag' mode; the next recv continues with the oldest message still held.
   */
  async recv(opts?: RecvOptions): Promise<Uint8Array | undefined> {
    this.#checkRecv();
    const o = opts === undefined ? NO_OPTIONS : parseOptions(opts, RECV_OPTIONS, 'recv options');
    const timeout = validateTimeout(o.timeoutMs);
    const inPlace = this.#inPlace(o.copy);
    const take = (spinUs: number) => this.#take(spinUs, inPlace);
    if (this.#recvTail === undefined) {
      // Fast path: a message is here (or arrives while we spin).
      const msg = take(this.spinUs);
      if (msg !== undefined || timeout === 0) return msg;
    }
    return this.#queueRecv(timeout, take);
  }

  /**
   * Every message available now, up to `max` (default 64): waits (like recv) until at least one arrives, then
   * returns them all at once — one native call for the batch. An empty array on timeout or close. A lag in
   * 'lag' mode ends the batch; the next call throws ERR_LIBIPC_LAGGED.
   */
  async recvMany(max = 64, opts: Omit<RecvOptions, 'copy'> = {}): Promise<Uint8Array[]> {
    this.#checkRecv();
    const limit = checkInt(max, 'max', 1, MAX_BATCH);
    const timeout = validateTimeout(parseOptions(opts, SEND_OPTIONS, 'recvMany options').timeoutMs);
    return (await this.#recvBatch(timeout, (spinUs) => this.#takeMany(spinUs, limit))) ?? [];
  }

  /** Every message available now, up to `max` (default 64), without waiting (throws LaggedError like recv). */
  tryRecvMany(max = 64): Uint8Array[] {
    this.#checkRecv();
    return this.#takeMany(0, checkInt(max, 'max', 1, MAX_BATCH)) ?? [];
  }

  /**
   * Like recvMany, but the batch comes packed: the messages one after another in one buffer, their boundaries in
   * a Uint32Array (see PackedMessages) — one native call and two JS objects per batch, none per message. Waits
   * until at least one message arrives; an empty batch (offsets [0]) on timeout or close.
   */
  async recvPacked(max = 1024, opts: Omit<RecvOptions, 'copy'> = {}): Promise<PackedMessages> {
    this.#checkRecv();
    const limit = checkInt(max, 'max', 1, MAX_BATCH);
    const timeout = validateTimeout(parseOptions(opts, SEND_OPTIONS, 'recvPacked options').timeoutMs);
    return (await this.#recvBatch(timeout, (spinUs) => this.#takePacked(spinUs, limit))) ?? emptyPacked();
  }

  /** The messages available now, up to `max` (default 1024), packed (see recvPacked); never waits. */
  tryRecvPacked(max = 1024): PackedMessages {
    this.#checkRecv();
    return this.#takePacked(0, checkInt(max, 'max', 1, MAX_BATCH)) ?? emptyPacked();
  }

  /** A batch now (spinning first) or, queued behind earlier receives of this handle, once one arrives. */
  async #recvBatch<T>(timeout: number, take: (spinUs: number) => T | undefined): Promise<T | undefined> {
    if (this.#recvTail === undefined) {
      const batch = take(this.spinUs);
      if (batch !== undefined || timeout === 0) return batch;
    }
    return this.#queueRecv(timeout, take);
  }

  /** Queues a waiting receive behind earlier ones of this handle (receives of one handle settle in call order). */
  async #queueRecv<T>(timeout: number, take: (spinUs: number) => T | undefined): Promise<T | undefined> {
    const deadline = performance.now() + timeout;
    const prev = this.#recvTail;
    // A queued recv spins when its turn comes; the first one has just spun above.
    const mine = prev ? prev.then(() => this.#recvLoop(deadline, true, take)) : this.#recvLoop(deadline, false, take);
    const tail = mine.then(ignore, ignore);
    this.#recvTail = tail;
    try {
      return await mine;
    } finally {
      if (this.#recvTail === tail) this.#recvTail = undefined;
    }
  }

  /** A message if one is here now, else undefined (throws LaggedError like recv). `{ copy: false }`: see recv. */
  tryRecv(opts?: { copy?: boolean }): Uint8Array | undefined {
    this.#checkRecv();
    const inPlace = opts === undefined ? false : this.#inPlace(parseOptions(opts, TRY_RECV_OPTIONS, 'tryRecv options').copy);
    return this.#take(0, inPlace);
  }

  /**
   * Sends several messages as one batch: under one lock, each whole and published in order, with one wake-up of
   * sleeping receivers. Resolves how many were sent (all of them, unless there is no receiver: then 0, or the
   * handle closes). A ring that fills mid-batch makes the rest wait like send(); a sender killed mid-batch has
   * delivered a prefix of whole messages.
   */
  async sendMany(messages: ReadonlyArray<Uint8Array | string>, opts: SendOptions = {}): Promise<number> {
    const checked = this.#checkBatch(messages);
    // Our own copy of the list: the caller may reuse its array while the rest of the batch waits for room.
    const list = checked === messages ? checked.slice() : checked;
    const timeout = validateTimeout(parseOptions(opts, SEND_OPTIONS, 'sendMany options').timeoutMs);
    return this.#sendBatched(
      list.length,
      timeout,
      (from) => this.#trySendList(from === 0 ? list : list.slice(from), this.spinUs),
      (i) => list[i]!,
    );
  }

  /** Sends what it can of the batch right now (a prefix, under one lock, one wake-up); returns how many. */
  trySendMany(messages: ReadonlyArray<Uint8Array | string>): number {
    const list = this.#checkBatch(messages);
    if (this.#sendTail !== undefined) return 0;
    this.#maybeReap();
    return Math.max(0, this.#trySendList(list, 0));
  }

  /**
   * A batch of small messages goes to the native core packed into one reused buffer: copying a few bytes here
   * costs less than reading each message's Uint8Array through N-API. Larger batches go as the array itself.
   */
  #trySendList(list: Uint8Array[], spinUs: number): number {
    const self = this.#receives ? 1 : 0;
    let total = 0;
    for (let i = 0; i < list.length; i++) total += list[i]!.length;
    if (total > PACK_BYTES) return this.#core.trySendMany(list, self, spinUs);
    if (this.#packOffsets.length < list.length + 1) this.#packOffsets = new Uint32Array(Math.max(list.length + 1, 256));
    const data = (this.#packData ??= new Uint8Array(PACK_BYTES));
    packInto(list, data, this.#packOffsets);
    return this.#core.trySendPacked(data, this.#packOffsets.subarray(0, list.length + 1), self, spinUs);
  }

  /**
   * Sends a packed batch (see packMessages and PackedMessages) with sendMany's guarantees: the batch crosses into
   * the native core as one buffer and one Uint32Array, not as a value per message. Resolves how many were sent.
   */
  async sendPacked(batch: PackedMessages, opts: SendOptions = {}): Promise<number> {
    const { data, offsets } = this.#checkPackedSend(batch);
    const timeout = validateTimeout(parseOptions(opts, SEND_OPTIONS, 'sendPacked options').timeoutMs);
    return this.#sendBatched(
      offsets.length - 1,
      timeout,
      (from) => this.#core.trySendPacked(data, from === 0 ? offsets : offsets.subarray(from), this.#receives ? 1 : 0, this.spinUs),
      (i) => data.subarray(offsets[i]!, offsets[i + 1]!),
    );
  }

  /** Sends what it can of a packed batch right now (a prefix, under one lock, one wake-up); returns how many. */
  trySendPacked(batch: PackedMessages): number {
    const { data, offsets } = this.#checkPackedSend(batch);
    if (this.#sendTail !== undefined) return 0;
    this.#maybeReap();
    return Math.max(0, this.#core.trySendPacked(data, offsets, this.#receives ? 1 : 0, 0));
  }

  /**
   * The batch sends: as many as go now under one lock (`tryFrom(i)` sends from message i on); when the ring is
   * full, the lock busy or a message must stream, that message goes like send() and the batch resumes after it.
   */
  async #sendBatched(count: number, timeout: number, tryFrom: (from: number) => number, message: (i: number) => Uint8Array): Promise<number> {
    const deadline = performance.now() + timeout;
    let sent = 0;
    while (sent < count) {
      if (this.#sendTail === undefined) {
        this.#maybeReap();
        const n = tryFrom(sent);
        if (n === -1) return sent; // no receiver
        if (n > 0) {
          sent += n;
          continue;
        }
      }
      const left = Math.max(0, deadline - performance.now());
      if (!(await this.send(message(sent), { timeoutMs: timeout === Infinity ? Infinity : left }))) break;
      sent++;
    }
    return sent;
  }

  /** Every message until close(), drained in batches (one native call per batch). */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.#closed) return;
      const batch = await this.recvMany(64);
      if (batch.length === 0) return;
      for (const msg of batch) yield msg;
    }
  }

  /** Waits until at least `count` live receivers are connected; false at the timeout. */
  async waitForRecv(count: number, opts: { timeoutMs?: number } = {}): Promise<boolean> {
    checkInt(count, 'count', 0, native().layout.maxHandles);
    const timeout = validateTimeout(parseOptions(opts, WAIT_FOR_RECV_OPTIONS, 'waitForRecv options').timeoutMs);
    const deadline = performance.now() + timeout;
    for (;;) {
      this.#assertOpen();
      const observed = Atomics.load(this.#words, this.#layout.membership / 4);
      if (this.recvCount >= count) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      try {
        await wait(this.#mem, this.#layout.membership, observed, Math.min(left, WAKE_CHECK_MS));
      } catch (err) {
        if (err instanceof ClosedError) return false;
        throw err;
      }
    }
  }

  /**
   * Leaves the channel: a receiver stops counting at once; the last handle removes the segment. Pending recv
   * calls resolve undefined, pending sends reject with ERR_LIBIPC_CLOSED. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    openHandles.delete(this);
    const layout = this.#layout;
    if (this.#receives) this.#core.deactivate();
    if (this.#receives) this.#disarmBell();
    this.#setSleeping(SLEEP_SEND, false);
    if (this.#bell) this.#closeBell();
    if (this.#holdingSendLock) {
      this.#holdingSendLock = false;
      this.#sendLock.unlock();
    }
    try {
      this.#header.lock.lockSync(LOCK_MS);
      try {
        if (this.#type === TYPE_ROUTE && this.#view.getUint32(layout.routeTag, true) === this.#row + 1 && this.#routePid() === process.pid) {
          Atomics.store(this.#words, layout.routePid / 4, 0);
        }
        this.#table.remove(this.#row);
        this.#reapLocked();
        this.#bump(layout.membership);
        if (this.#table.used().length === 0) this.#header.retire();
      } finally {
        this.#header.lock.unlock();
      }
    } catch (err) {
      // The lock holder is stopped: our row is reaped by whoever attaches after this process exits.
      if (!(err instanceof TimeoutError)) throw err;
    } finally {
      this.#core.close();
      this.#mem.close();
    }
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

  // ---- internals ----

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError(`${this.#what()} ${this.name} is closed; open a new handle to use it`);
  }

  #what(): string {
    return this.#type === TYPE_ROUTE ? 'route' : 'channel';
  }

  #checkSend(data: unknown): Uint8Array {
    this.#checkSender();
    return this.#checkSize(toBytes(data));
  }

  #checkSender(): void {
    this.#assertOpen();
    if (this.#type === TYPE_ROUTE && this.#receives) {
      throw new IllegalStateError(`route ${this.name}: this handle is a receiver; a route has one sender (open a Route in 'sender' mode)`);
    }
  }

  #checkSize(bytes: Uint8Array): Uint8Array {
    if (bytes.length > this.maxMessageSize) {
      throw new TooLargeError(
        `message of ${bytes.length} bytes is larger than ${this.#what()} ${this.name}'s maxMessageSize (${this.maxMessageSize}); split it or create the channel with a larger maxMessageSize`,
      );
    }
    return bytes;
  }

  /** The batch as bytes: the caller's own array when it holds only Uint8Arrays, else a copy with strings encoded. */
  #checkBatch(messages: unknown): Uint8Array[] {
    this.#checkSender();
    if (!Array.isArray(messages)) {
      throw new InvalidArgumentError(`messages must be an array of Uint8Array (or Buffer) or strings, got ${describeValue(messages)}`);
    }
    let encoded: Uint8Array[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const m: unknown = messages[i];
      if (m instanceof Uint8Array && encoded === undefined) {
        this.#checkSize(m);
        continue;
      }
      encoded ??= messages.slice(0, i) as Uint8Array[];
      encoded.push(this.#checkSize(toBytes(m)));
    }
    return encoded ?? (messages as Uint8Array[]);
  }

  #checkPackedSend(batch: unknown): PackedMessages {
    this.#checkSender();
    return checkPacked(batch, this.maxMessageSize, `${this.#what()} ${this.name}`);
  }

  #checkRecv(): void {
    this.#assertOpen();
    if (!this.#receives) {
      throw new IllegalStateError(`${this.#what()} ${this.name}: this handle was opened in 'sender' mode; open one with mode 'receiver' to receive`);
    }
  }

  /** copy: false (in place) is only safe where senders never overwrite unread slots. */
  #inPlace(copy: boolean | undefined): boolean {
    if (copy !== false) return false;
    if (this.onFull === 'lag') {
      throw new InvalidArgumentError(
        `${this.#what()} ${this.name} is in 'lag' mode, where a sender may overwrite a slot while it is read: in-place reads ({ copy: false }) need 'wait' mode`,
      );
    }
    return true;
  }

  /** A slab with room for at least `want` bytes (and one slot payload) at #slabOffset: received messages are views into it. */
  #roomInSlab(want = 0): void {
    const room = Math.max(want, this.slotSize - this.#layout.slotHeader);
    if (this.#slab.byteLength - this.#slabOffset < room) {
      this.#slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, room)).buffer;
      this.#slabOffset = 0;
    }
  }

  #take(spinUs: number, inPlace = false): Uint8Array | undefined {
    this.#roomInSlab();
    const r = this.#core.recv(spinUs, this.#slab, this.#slabOffset, inPlace);
    if (typeof r !== 'number') return r;
    if (r === -1) return undefined;
    if (r < 0) throw new LaggedError(-2 - r);
    const msg = new Uint8Array(this.#slab, this.#slabOffset, r);
    this.#slabOffset += (r + 7) & ~7;
    return msg;
  }

  /**
   * One native batch receive into the slab: the messages' starts (relative to `start`) and, with `align` 8, their
   * lengths; or one message assembled from fragments; undefined when nothing came within spinUs.
   */
  #takeBatch(spinUs: number, max: number, align: 1 | 8): { start: number; n: number } | Uint8Array | undefined {
    if (this.#starts.length < max + 1) {
      this.#starts = new Uint32Array(max + 1);
      this.#lengths = new Uint32Array(max);
    }
    // Room for the whole batch when the slots are small; a short slab just makes a shorter batch.
    this.#roomInSlab(Math.min(max * (this.slotSize - this.#layout.slotHeader), SLAB_BYTES / 2));
    const start = this.#slabOffset;
    const r = this.#core.recvPacked(max, this.#slab, start, this.#starts, align, spinUs, align === 8 ? this.#lengths : undefined);
    if (typeof r !== 'number') return r;
    if (r < 0) throw new LaggedError(-2 - r);
    if (r === 0) return undefined;
    this.#slabOffset = (start + this.#starts[r]! + 7) & ~7;
    return { start, n: r };
  }

  #takeMany(spinUs: number, max: number): Uint8Array[] | undefined {
    const got = this.#takeBatch(spinUs, max, 8);
    if (got === undefined || got instanceof Uint8Array) return got && [got];
    const out = new Array<Uint8Array>(got.n);
    for (let i = 0; i < got.n; i++) out[i] = new Uint8Array(this.#slab, got.start + this.#starts[i]!, this.#lengths[i]!);
    return out;
  }

  #takePacked(spinUs: number, max: number): PackedMessages | undefined {
    const got = this.#takeBatch(spinUs, max, 1);
    if (got === undefined || got instanceof Uint8Array) return got && { data: got, offsets: Uint32Array.of(0, got.length) };
    return { data: new Uint8Array(this.#slab, got.start, this.#starts[got.n]!), offsets: this.#starts.slice(0, got.n + 1) };
  }

  async #recvLoop<T>(deadline: number, spin: boolean, take: (spinUs: number) => T | undefined): Promise<T | undefined> {
    for (let first = true; ; first = false) {
      if (this.#closed) return undefined;
      // The caller has just looked (first and not spinning): the check after arming below covers a new message.
      const msg = first && !spin ? undefined : take(first ? this.spinUs : 0);
      if (msg !== undefined) return msg;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      // Announce the sleep before the last check, so a sender either sees us or we see its message.
      this.#armBell();
      try {
        if (this.#core.pending()) continue;
        // The slice bounds a lost ring (a sender that could not open our FIFO): we re-check at least this often.
        if ((await this.#ring(Math.min(left, WAKE_CHECK_MS))) === 'closed') return undefined;
      } finally {
        this.#disarmBell();
      }
    }
  }

  /** Sleeps until a sender rings this receiver's doorbell (the event loop polls it: no helper thread). */
  #ring(timeoutMs: number): Promise<'ok' | 'timed-out' | 'closed'> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (outcome: 'ok' | 'timed-out' | 'closed') => {
        if (this.#bellWaiting !== settle) return;
        this.#bellWaiting = undefined;
        if (timer === this.#sliceTimer) timer?.unref();
        else if (timer) clearTimeout(timer);
        if (outcome !== 'ok') this.#bell?.disarm();
        resolve(outcome);
      };
      this.#bellWaiting = settle;
      this.#bell!.arm(() => settle('ok'));
      if (timeoutMs === WAKE_CHECK_MS) {
        // The usual slice has one timer per handle, re-armed for each sleep rather than made and cleared (a
        // measurable part of a sleeping receive); unref'd between sleeps, and a late firing finds no sleeper.
        timer = this.#sliceTimer ??= setTimeout(() => this.#bellWaiting?.('timed-out'), WAKE_CHECK_MS);
        timer.refresh().ref();
      } else if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => settle('timed-out'), timeoutMs);
      }
    });
  }

  #closeBell(): void {
    this.#bellWaiting?.('closed');
    if (this.#sliceTimer) clearTimeout(this.#sliceTimer);
    this.#bell!.close();
    this.#bell = undefined;
    removeBell(`${bellPrefix(this.name)}${this.#row}`);
  }

  async #sendSlow(bytes: Uint8Array, deadline: number, timeout: number): Promise<boolean> {
    const layout = this.#layout;
    const payload = this.slotSize - layout.slotHeader;
    const fragments = Math.max(1, Math.ceil(bytes.length / payload));
    const stream = fragments > this.capacity;
    this.#assertOpen();
    if (!this.#hasReceiver()) return false;
    try {
      await this.#sendLock.lock(Math.max(0, deadline - performance.now()));
    } catch (err) {
      if (err instanceof TimeoutError) {
        throw new TimeoutError(
          `${this.#what()} ${this.name}: could not send within ${timeout} ms: another sender (pid ${this.#sendLock.ownerPid}) is mid-message on a full ring; retry later or raise timeoutMs`,
        );
      }
      throw err;
    }
    this.#holdingSendLock = true;
    try {
      let pos = 0;
      let stalledSince = performance.now();
      for (;;) {
        this.#assertOpen();
        if (pos === 0 && !this.#hasReceiver()) return false;
        if (!stream) {
          if (this.#core.writeWhole(bytes)) return true;
        } else {
          const next = this.#core.writeSome(bytes, pos);
          if (next === bytes.length) return true;
          if (next !== pos) stalledSince = performance.now();
          pos = next;
        }
        await this.#waitForRoom(stream ? 1 : fragments, deadline, timeout, stalledSince);
      }
    } finally {
      if (this.#holdingSendLock) {
        this.#holdingSendLock = false;
        this.#sendLock.unlock();
      }
    }
  }

  #hasReceiver(): boolean {
    const count = () => Atomics.load(this.#words, this.#layout.receiverCount / 4) - (this.#receives ? 1 : 0);
    if (count() > 0) return true;
    return false;
  }

  /** Sleeps until the slowest receiver makes room, dies, or the deadline passes (ERR_LIBIPC_TIMEOUT). */
  async #waitForRoom(need: number, deadline: number, timeout: number, stalledSince: number): Promise<void> {
    const watch = performance.now() - stalledSince >= FIRST_WAIT_MS;
    const layout = this.#layout;
    const row = this.#core.slowest();
    const who = row >= 0 ? this.#table.identity(row) : undefined;
    if (row >= 0 && (!who || !isAlive(who.pid, who.startTime))) {
      this.#reap();
      return;
    }
    // Wait for a batch of room (a quarter of the ring, or what the message needs), not for every freed slot.
    const want = Math.min(this.capacity, Math.max(need, Math.ceil(this.capacity / 4)));
    this.#core.setRoomTarget(want);
    this.#setSleeping(SLEEP_SEND, true);
    try {
      const observed = Atomics.load(this.#words, layout.readProgress / 4);
      if (this.#core.freeSlots(want) >= want) return;
      if (this.#core.freeSlots(need) >= need && performance.now() - stalledSince >= FIRST_WAIT_MS) return;
      const left = deadline - performance.now();
      if (left <= 0) {
        if (this.#core.freeSlots(need) >= need) return;
        throw new TimeoutError(
          `${this.#what()} ${this.name} is full: the slowest receiver (pid ${who?.pid ?? '?'}) made no room within ${timeout} ms; ` +
            "it may be stopped or slow. Retry, raise timeoutMs, or use onFull: 'lag'",
        );
      }
      if (!watch) {
        // Most waits end within microseconds (an active receiver): only a longer one watches for a death.
        await wait(this.#mem, layout.readProgress, observed, Math.min(left, FIRST_WAIT_MS), { spinUs: this.spinUs });
        return;
      }
      const stop = new AbortController();
      const exited = who ? watchExit(who.pid, who.startTime, { signal: stop.signal, ref: false }).catch(() => undefined) : undefined;
      try {
        // Short slices: a receiver that stops between `need` and `want` free slots does not wake us.
        const woke = wait(this.#mem, layout.readProgress, observed, Math.min(left, FIRST_WAIT_MS));
        await (exited ? Promise.race([woke, exited]) : woke);
      } finally {
        stop.abort();
      }
    } finally {
      this.#setSleeping(SLEEP_SEND, false);
    }
  }

  /** Arms this receiver's doorbell: the next sender to publish disarms and rings it (once per sleep). */
  #armBell(): void {
    const layout = this.#layout;
    Atomics.store(this.#words, (layout.receivers + this.#row * layout.receiverRow + layout.receiverArmed) / 4, 1);
    Atomics.add(this.#words, layout.recvSleepers / 4, 1);
  }

  /** Disarms it unless a sender already did; exactly one of us uncounts it. */
  #disarmBell(): void {
    if (this.#mem.isClosed) return;
    const layout = this.#layout;
    if (Atomics.exchange(this.#words, (layout.receivers + this.#row * layout.receiverRow + layout.receiverArmed) / 4, 0) === 1) {
      Atomics.sub(this.#words, layout.recvSleepers / 4, 1);
    }
  }

  /** Marks this row as waiting for room (or not) and keeps sendSleepers; a reaper undoes a dead row's. */
  #setSleeping(which: number, on: boolean): void {
    if (this.#mem.isClosed) return;
    const layout = this.#layout;
    const flags = (layout.receivers + this.#row * layout.receiverRow + layout.receiverFlags) / 4;
    for (const bit of [SLEEP_SEND]) {
      if (!(which & bit) || ((this.#sleeping & bit) !== 0) === on) continue;
      const counter = layout.sendSleepers / 4;
      if (on) {
        this.#sleeping |= bit;
        Atomics.or(this.#words, flags, bit);
        Atomics.add(this.#words, counter, 1);
      } else {
        this.#sleeping &= ~bit;
        Atomics.sub(this.#words, counter, 1);
        Atomics.and(this.#words, flags, ~bit);
      }
    }
  }

  #routePid(): number {
    return Atomics.load(this.#words, this.#layout.routePid / 4) >>> 0;
  }

  /** Takes the route's one sender seat; a seat of a dead process is taken over. Caller holds the segment lock. */
  #claimRoute(row: number): void {
    const layout = this.#layout;
    const pid = this.#routePid();
    if (pid !== 0) {
      const start = this.#view.getBigUint64(layout.routeStart, true);
      if (isAlive(pid, start)) {
        throw new ExistsError(`route ${this.name} already has a live sender (pid ${pid}); a route has one sender at a time: close that one first`);
      }
    }
    const self = selfIdentity();
    this.#view.setBigUint64(layout.routeStart, self.startTime, true);
    this.#view.setUint32(layout.routeTag, row + 1, true);
    Atomics.store(this.#words, layout.routePid / 4, self.pid);
  }

  #bump(offset: number): void {
    Atomics.add(this.#words, offset / 4, 1);
    wake(this.#mem, offset);
  }

  /** A cheap liveness look at the rows every REAP_EVERY_MS; takes the lock only when someone died. */
  #maybeReap(): void {
    if (++this.#sendsSinceReapCheck < 64) return;
    this.#sendsSinceReapCheck = 0;
    const now = performance.now();
    if (now - this.#lastReap < REAP_EVERY_MS) return;
    this.#lastReap = now;
    for (const row of this.#table.used()) {
      if (!this.#table.isLive(row)) {
        this.#reap();
        return;
      }
    }
  }

  #reap(): void {
    try {
      this.#header.lock.lockSync(LOCK_MS);
    } catch (err) {
      if (err instanceof TimeoutError) return; // a stopped lock holder: try again later
      throw err;
    }
    try {
      this.#reapLocked();
    } finally {
      this.#header.lock.unlock();
    }
  }

  /** Frees the rows of processes that died without closing (by identity, not kill(pid, 0)). Caller holds the lock. */
  #reapLocked(): void {
    const layout = this.#layout;
    const bin = native();
    let changed = false;
    for (const row of this.#table.used()) {
      if (this.#table.isLive(row)) continue;
      const rowBase = (layout.receivers + row * layout.receiverRow) / 4;
      if (Atomics.exchange(this.#words, rowBase + layout.receiverArmed / 4, 0) === 1) Atomics.sub(this.#words, layout.recvSleepers / 4, 1);
      if (Atomics.exchange(this.#words, rowBase + layout.receiverFlags / 4, 0) & SLEEP_SEND) Atomics.sub(this.#words, layout.sendSleepers / 4, 1);
      bin.deactivateRow(this.#mem.buffer, row);
      removeBell(`${bellPrefix(this.name)}${row}`);
      if (this.#type === TYPE_ROUTE && this.#view.getUint32(layout.routeTag, true) === row + 1) {
        Atomics.store(this.#words, layout.routePid / 4, 0);
      }
      this.#table.remove(row);
      changed = true;
    }
    if (changed) this.#bump(layout.membership);
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
