// The core of a channel handle: joining the segment, one message in and one out, and leaving. Waiting and
// waking are in waiting.ts, batches in batch.ts, the receive slab and in-place reads in slab.ts, the route's
// sender seat and the reaping of dead handles in reap.ts; channel.ts is the public face over this.
import {
  attachSegment,
  ClosedError,
  IdentityTable,
  IllegalStateError,
  parseOptions,
  RegistryFullError,
  RobustMutex,
  type SegmentHeader,
  SharedMemory,
  TimeoutError,
  TooLargeError,
  translateNativeError,
  validateName,
  validateTimeout,
  wait,
  wake,
} from '@libipc/shm';
import { type ChannelLayout, native, type NativeChannelCore, type NativeDoorbell, openDoorbell, SendStatus } from './native.js';
import {
  type ChannelOptions,
  checkInt,
  type Mode,
  NO_OPTIONS,
  type OnFull,
  parseChannelOptions,
  RECV_OPTIONS,
  resolveOptions,
  SEND_OPTIONS,
  toBytes,
  TRY_RECV_OPTIONS,
  WAIT_FOR_RECV_OPTIONS,
} from './options.js';
import { claimRoute, maybeReap, reapLocked, releaseRoute } from './reap.js';
import {
  bellPrefix,
  checkSegment,
  KIND,
  LOCK_MS,
  ROLE_RECEIVER,
  ROLE_SENDER,
  SLEEP_SEND,
  TYPE_ROUTE,
  trackOpen,
  untrackOpen,
} from './segment.js';
import { ReceiveSlab } from './slab.js';
import { closeBell, disarmBell, recvLoop, setSleeping, waitForRoom, WAKE_CHECK_MS } from './waiting.js';

const ignore = (): undefined => undefined;

/**
 * One handle on `libipc.chan.<name>` (internal: Channel and Route wrap it). It owns one row of the segment's
 * identity table; a receiver's row also holds its read cursor. Its fields are read by the other parts of the
 * handle (waiting, batches, reaping); only this handle writes them.
 */
export class Endpoint {
  readonly name: string;
  readonly type: number;
  readonly mode: Mode;
  readonly onFull!: OnFull;
  readonly capacity!: number;
  readonly slotSize!: number;
  readonly maxMessageSize!: number;
  readonly spinUs: number;
  readonly receives: boolean;

  readonly mem!: SharedMemory;
  readonly header!: SegmentHeader;
  readonly table!: IdentityTable;
  readonly core!: NativeChannelCore;
  readonly words!: Int32Array;
  readonly view!: DataView;
  readonly sendLock!: RobustMutex;
  readonly layout: ChannelLayout;
  readonly row!: number;
  readonly slab: ReceiveSlab;
  closed = false;
  holdingSendLock = false;
  /** SLEEP_SEND while this handle waits for room (see setSleeping). */
  sleeping = 0;
  lastReap = 0;
  sendsSinceReapCheck = 0;
  bell: NativeDoorbell | undefined;
  bellWaiting: ((outcome: 'ok' | 'timed-out' | 'closed') => void) | undefined;
  sliceTimer: NodeJS.Timeout | undefined;
  /** The last queued send or receive of this handle: later ones go after it (call order). */
  sendTail: Promise<unknown> | undefined;
  recvTail: Promise<unknown> | undefined;

  constructor(type: number, name: string, given: ChannelOptions) {
    validateName(name, 'channel name');
    const opts = parseChannelOptions(given);
    const o = resolveOptions(opts);
    const bin = native();
    const layout = bin.layout;
    this.layout = layout;
    this.type = type;
    this.name = name;
    this.mode = o.mode;
    this.spinUs = o.spinUs;
    this.receives = o.mode === 'receiver';
    const what = this.what();

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
      let existing: ReturnType<typeof checkSegment>;
      try {
        existing = checkSegment(mem, view, layout, type, name, opts);
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
      this.mem = mem;
      this.header = header;
      this.view = view;
      this.words = new Int32Array(mem.buffer, 0, layout.ring / 4);
      this.table = new IdentityTable(mem, layout.identities, layout.maxHandles);
      this.sendLock = new RobustMutex(mem, layout.sendLock);
      let row = -1;
      try {
        reapLocked(this);
        row = this.table.add(this.receives ? ROLE_RECEIVER : ROLE_SENDER);
        if (row < 0) {
          throw new RegistryFullError(`${what} ${name} already has ${layout.maxHandles} handles attached; close some first`);
        }
        if (type === TYPE_ROUTE && !this.receives) claimRoute(this, row);
        this.row = row;
        this.core = new bin.ChannelCore(mem.buffer, row, bellPrefix(name), mem.objectName, mem.handle.dev, mem.inode);
        if (this.receives) {
          try {
            this.bell = openDoorbell(bin, `${bellPrefix(name)}${row}`);
          } catch (err) {
            translateNativeError(err, `doorbell of ${what} ${name}`); // ENOSPC → ERR_LIBIPC_NO_SPACE, …
          }
          this.core.activate();
        }
        this.bump(layout.membership);
        trackOpen(this);
      } catch (err) {
        if (this.bell) closeBell(this);
        this.core?.close(); // before the row is freed: its clean-up hook must not touch a row that is not ours
        if (row >= 0) this.table.remove(row);
        if (this.table.used().length === 0) header.retire();
        header.lock.unlock();
        mem.close();
        throw err;
      }
      header.lock.unlock();
      this.slab = new ReceiveSlab(this.slotSize - layout.slotHeader);
      return;
    }
  }

  /** Live receivers connected now (a dead one stops counting at once, even before it is reaped). */
  recvCount(): number {
    if (this.closed) return 0;
    let n = 0;
    for (const row of this.table.used()) {
      if (this.core.isActive(row) && this.table.isLive(row)) n++;
    }
    return n;
  }

  async send(data: Uint8Array | string, opts?: { timeoutMs?: number }): Promise<boolean> {
    const bytes = this.checkSend(data);
    // No options (the hot path): nothing to check.
    const timeout = opts === undefined ? Infinity : validateTimeout(parseOptions(opts, SEND_OPTIONS, 'send options').timeoutMs);
    const deadline = performance.now() + timeout;
    maybeReap(this);
    if (this.sendTail === undefined) {
      const st = this.core.trySend(bytes, this.receives ? 1 : 0, this.spinUs);
      if (st === SendStatus.Sent) return true;
      if (st === SendStatus.NoReceiver) return false;
    }
    // Sends of one handle go out in call order.
    const prev = this.sendTail;
    const mine = (async () => {
      if (prev) await prev;
      return this.#sendSlow(bytes, deadline, timeout);
    })();
    const tail = mine.then(ignore, ignore);
    this.sendTail = tail;
    try {
      return await mine;
    } finally {
      if (this.sendTail === tail) this.sendTail = undefined;
    }
  }

  trySend(data: Uint8Array | string): boolean {
    const bytes = this.checkSend(data);
    if (this.sendTail !== undefined) return false;
    maybeReap(this);
    return this.core.trySend(bytes, this.receives ? 1 : 0, 0) === SendStatus.Sent;
  }

  async recv(opts?: { timeoutMs?: number; copy?: boolean }): Promise<Uint8Array | undefined> {
    this.checkRecv();
    const o = opts === undefined ? NO_OPTIONS : parseOptions(opts, RECV_OPTIONS, 'recv options');
    const timeout = validateTimeout(o.timeoutMs);
    const inPlace = this.slab.inPlace(o.copy, this);
    const take = (spinUs: number) => this.slab.takeOne(this.core, spinUs, inPlace);
    if (this.recvTail === undefined) {
      // Fast path: a message is here (or arrives while we spin).
      const msg = take(this.spinUs);
      if (msg !== undefined || timeout === 0) return msg;
    }
    return this.queueRecv(timeout, take);
  }

  tryRecv(opts?: { copy?: boolean }): Uint8Array | undefined {
    this.checkRecv();
    const inPlace = opts === undefined ? false : this.slab.inPlace(parseOptions(opts, TRY_RECV_OPTIONS, 'tryRecv options').copy, this);
    return this.slab.takeOne(this.core, 0, inPlace);
  }

  /** Queues a waiting receive behind earlier ones of this handle (receives of one handle settle in call order). */
  async queueRecv<T>(timeout: number, take: (spinUs: number) => T | undefined): Promise<T | undefined> {
    const deadline = performance.now() + timeout;
    const prev = this.recvTail;
    // A queued recv spins when its turn comes; the first one has just spun above.
    const mine = prev ? prev.then(() => recvLoop(this, deadline, true, take)) : recvLoop(this, deadline, false, take);
    const tail = mine.then(ignore, ignore);
    this.recvTail = tail;
    try {
      return await mine;
    } finally {
      if (this.recvTail === tail) this.recvTail = undefined;
    }
  }

  async waitForRecv(count: number, opts: { timeoutMs?: number }): Promise<boolean> {
    checkInt(count, 'count', 0, this.layout.maxHandles);
    const timeout = validateTimeout(parseOptions(opts, WAIT_FOR_RECV_OPTIONS, 'waitForRecv options').timeoutMs);
    const deadline = performance.now() + timeout;
    for (;;) {
      this.assertOpen();
      const observed = Atomics.load(this.words, this.layout.membership / 4);
      if (this.recvCount() >= count) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      try {
        await wait(this.mem, this.layout.membership, observed, Math.min(left, WAKE_CHECK_MS));
      } catch (err) {
        if (err instanceof ClosedError) return false;
        throw err;
      }
    }
  }

  /** A message that did not go out at once: under the send lock, waiting for room as long as it takes. */
  async #sendSlow(bytes: Uint8Array, deadline: number, timeout: number): Promise<boolean> {
    const payload = this.slotSize - this.layout.slotHeader;
    const fragments = Math.max(1, Math.ceil(bytes.length / payload));
    const stream = fragments > this.capacity;
    this.assertOpen();
    if (!this.hasReceiver()) return false;
    try {
      await this.sendLock.lock(Math.max(0, deadline - performance.now()));
    } catch (err) {
      if (err instanceof TimeoutError) {
        throw new TimeoutError(
          `${this.what()} ${this.name}: could not send within ${timeout} ms: another sender (pid ${this.sendLock.ownerPid}) is mid-message on a full ring; retry later or raise timeoutMs`,
        );
      }
      throw err;
    }
    this.holdingSendLock = true;
    try {
      let pos = 0;
      let stalledSince = performance.now();
      for (;;) {
        this.assertOpen();
        if (pos === 0 && !this.hasReceiver()) return false;
        if (!stream) {
          if (this.core.writeWhole(bytes)) return true;
        } else {
          const next = this.core.writeSome(bytes, pos);
          if (next === bytes.length) return true;
          if (next !== pos) stalledSince = performance.now();
          pos = next;
        }
        await waitForRoom(this, stream ? 1 : fragments, deadline, timeout, stalledSince);
      }
    } finally {
      if (this.holdingSendLock) {
        this.holdingSendLock = false;
        this.sendLock.unlock();
      }
    }
  }

  /**
   * Leaves the channel: a receiver stops counting at once; the last handle removes the segment. Pending recv
   * calls resolve undefined, pending sends reject with ERR_LIBIPC_CLOSED. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    untrackOpen(this);
    const layout = this.layout;
    if (this.receives) this.core.deactivate();
    if (this.receives) disarmBell(this);
    setSleeping(this, SLEEP_SEND, false);
    if (this.bell) closeBell(this);
    if (this.holdingSendLock) {
      this.holdingSendLock = false;
      this.sendLock.unlock();
    }
    try {
      this.header.lock.lockSync(LOCK_MS);
      try {
        releaseRoute(this);
        this.table.remove(this.row);
        reapLocked(this);
        this.bump(layout.membership);
        if (this.table.used().length === 0) this.header.retire();
      } finally {
        this.header.lock.unlock();
      }
    } catch (err) {
      // The lock holder is stopped: our row is reaped by whoever attaches after this process exits.
      if (!(err instanceof TimeoutError)) throw err;
    } finally {
      this.core.close();
      this.mem.close();
    }
  }

  // ---- checks and small helpers the other parts share ----

  bump(offset: number): void {
    Atomics.add(this.words, offset / 4, 1);
    wake(this.mem, offset);
  }

  hasReceiver(): boolean {
    return Atomics.load(this.words, this.layout.receiverCount / 4) - (this.receives ? 1 : 0) > 0;
  }

  assertOpen(): void {
    if (this.closed) throw new ClosedError(`${this.what()} ${this.name} is closed; open a new handle to use it`);
  }

  what(): string {
    return this.type === TYPE_ROUTE ? 'route' : 'channel';
  }

  checkSend(data: unknown): Uint8Array {
    this.checkSender();
    return this.checkSize(toBytes(data));
  }

  checkSender(): void {
    this.assertOpen();
    if (this.type === TYPE_ROUTE && this.receives) {
      throw new IllegalStateError(`route ${this.name}: this handle is a receiver; a route has one sender (open a Route in 'sender' mode)`);
    }
  }

  checkSize(bytes: Uint8Array): Uint8Array {
    if (bytes.length > this.maxMessageSize) {
      throw new TooLargeError(
        `message of ${bytes.length} bytes is larger than ${this.what()} ${this.name}'s maxMessageSize (${this.maxMessageSize}); split it or create the channel with a larger maxMessageSize`,
      );
    }
    return bytes;
  }

  checkRecv(): void {
    this.assertOpen();
    if (!this.receives) {
      throw new IllegalStateError(`${this.what()} ${this.name}: this handle was opened in 'sender' mode; open one with mode 'receiver' to receive`);
    }
  }
}
