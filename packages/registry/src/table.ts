import { IncompatibleError, isAlive, type LeaseState, processIdentity, selfIdentity, type SharedMemory, wake } from '@libipc/shm';
import type { ChangeType, RegistryChange, ServiceEntry } from './entry.js';
import {
  META_MAX_BYTES,
  E_LEASE,
  G_HOST_LEASE,
  E_CONTROL,
  E_HEARTBEAT,
  E_META,
  E_META_LENGTH,
  E_NAME,
  E_PID,
  E_REGISTERED_AT,
  E_REPLY,
  E_START,
  E_STATE,
  ENTRY_SIZE,
  EV_ENTRY,
  EV_SEQ,
  EV_TYPE,
  EVENT_SIZE,
  EVENT_TYPES,
  FREE,
  G_COPY,
  G_COPY_SIZE,
  G_CURRENT,
  G_NAME,
  G_STATE,
  type Geometry,
  GROUP_SIZE,
  LIVE,
  NAME_FIELD,
  RH_SEQ,
  RH_WAITERS,
  WRITING,
} from './layout.js';

/** What a change-event read returns: the events since `from`, or (when the ring was overrun) the live set. */
export type EventRead =
  | { seq: number; lagged: false; events: RegistryChange[] }
  | { seq: number; lagged: true; live: ServiceEntry[] };

const HEARTBEAT_MS_MASK = (1n << 48n) - 1n;
const NAME_RULE = /^[A-Za-z0-9._-]{1,63}$/;
const MAX_PID = 2 ** 22 - 1;

/** A slot or record that does not add up: another process wrote garbage into the segment. */
function corrupt(what: string): IncompatibleError {
  return new IncompatibleError(
    `${what} is corrupt (a process wrote invalid data into the registry segment); unregister or re-register it, or clear the domain`,
  );
}

/**
 * The entries, group records and change ring of one mapped registry segment. Not synchronised:
 * every method except `stamp`, `seq` and the waiter count runs while holding the segment lock.
 */
export class RegistryTable {
  readonly mem: SharedMemory;
  readonly g: Geometry;
  private readonly bytes: Buffer;
  private readonly view: DataView;
  private readonly words: Int32Array;
  private readonly wide: BigUint64Array;
  private readonly seqIndex: number;
  private readonly waitersIndex: number;
  /** Set when a change was published since the last `publish()`. */
  private changed = false;

  constructor(mem: SharedMemory, g: Geometry) {
    this.mem = mem;
    this.g = g;
    this.bytes = Buffer.from(mem.buffer, 0, mem.size);
    this.view = new DataView(mem.buffer, 0, mem.size);
    this.words = new Int32Array(mem.buffer, 0, mem.size >> 2);
    this.wide = new BigUint64Array(mem.buffer, 0, mem.size >> 3);
    this.seqIndex = (g.registryHeader + RH_SEQ) >> 2;
    this.waitersIndex = (g.registryHeader + RH_WAITERS) >> 2;
  }

  get seqOffset(): number {
    return this.g.registryHeader + RH_SEQ;
  }

  /** Events written so far (u32, wraps). Read without the lock. */
  seq(): number {
    return Atomics.load(this.words, this.seqIndex) >>> 0;
  }

  addWaiter(delta: 1 | -1): void {
    Atomics.add(this.words, this.waitersIndex, delta);
  }

  // ---- entries ----

  entryOffset(slot: number): number {
    return this.g.entries + slot * ENTRY_SIZE;
  }

  state(slot: number): number {
    return Atomics.load(this.words, (this.entryOffset(slot) + E_STATE) >> 2);
  }

  /** Byte offset of the entry's death lease. */
  leaseOffset(slot: number): number {
    return this.entryOffset(slot) + E_LEASE;
  }

  /** The entry's lease: 'held' (its registering thread lives), 'owner-died', 'released' or 'free' (no lease). */
  leaseState(slot: number): LeaseState {
    return this.mem.handle.leaseState(this.leaseOffset(slot));
  }

  /** A slot can take a new entry unless a live thread still holds its lease (its memory is on that thread's robust list). */
  private reusable(slot: number): boolean {
    return this.leaseState(slot) !== 'held';
  }

  private nameEquals(fieldOffset: number, key: Buffer): boolean {
    return key.compare(this.bytes, fieldOffset, fieldOffset + NAME_FIELD) === 0;
  }

  /** The live slot holding `key` (a NUL-padded name field, see nameKey), or -1. Also reports a free slot. */
  findSlot(key: Buffer): { slot: number; free: number } {
    let free = -1;
    for (let slot = 0; slot < this.g.capacity; slot++) {
      const state = this.state(slot);
      if (state === LIVE) {
        if (this.nameEquals(this.entryOffset(slot) + E_NAME, key)) return { slot, free };
      } else if (free < 0 && this.reusable(slot)) {
        free = slot;
      }
    }
    return { slot: -1, free };
  }

  /** Live slots whose name starts with `prefix` (all when empty). */
  liveSlots(prefix?: Buffer): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.g.capacity; slot++) {
      if (this.state(slot) !== LIVE) continue;
      const at = this.entryOffset(slot) + E_NAME;
      if (prefix && prefix.length > 0 && prefix.compare(this.bytes, at, at + prefix.length) !== 0) continue;
      slots.push(slot);
    }
    return slots;
  }

  /**
   * Liveness is identity: a zombie, or a pid now owned by another process, is dead. `seen` remembers
   * start times read during one operation, so a list of many entries of one process reads /proc once.
   */
  isSlotAlive(slot: number, seen?: Map<number, bigint | undefined>): boolean {
    return this.liveness(slot, seen) !== 'dead';
  }

  /** As isSlotAlive, telling too whether a held lease says so ('leased'), so a caller need not read the lease again. */
  liveness(slot: number, seen?: Map<number, bigint | undefined>): 'leased' | 'alive' | 'dead' {
    const at = this.entryOffset(slot);
    const pid = this.view.getUint32(at + E_PID, true);
    const startTime = this.view.getBigUint64(at + E_START, true);
    if (pid === 0 || pid > MAX_PID) return 'dead'; // not a pid: a corrupt entry is a dead one
    // The lease first: the kernel breaks it as its thread starts to die, long before /proc says so.
    const lease = this.leaseState(slot);
    if (lease === 'owner-died') return 'dead';
    if (lease === 'held') return 'leased';
    let alive: boolean;
    if (pid === process.pid) alive = startTime === selfIdentity().startTime;
    else if (!seen) alive = isAlive(pid, startTime);
    else {
      if (!seen.has(pid)) seen.set(pid, processIdentity(pid)?.startTime);
      alive = seen.get(pid) === startTime;
    }
    return alive ? 'alive' : 'dead';
  }

  /**
   * Fills a slot and publishes it. With `lease`, the calling thread takes the entry's death lease (a registration of
   * this process); otherwise the entry has none (a registration made for another process).
   */
  write(
    slot: number,
    e: { name: string; controlChannel: string; replyChannel: string; pid: number; startTime: bigint; meta?: Buffer },
    lease: boolean,
  ): number {
    const at = this.entryOffset(slot);
    Atomics.store(this.words, (at + E_STATE) >> 2, WRITING);
    if (lease) {
      if (!this.mem.handle.leaseAcquire(at + E_LEASE)) {
        Atomics.store(this.words, (at + E_STATE) >> 2, FREE);
        throw new IncompatibleError(`registry slot ${slot} has a lease held by a live thread; the registry is corrupt`);
      }
    } else {
      this.mem.handle.leaseClear(at + E_LEASE);
    }
    this.view.setUint32(at + E_PID, e.pid, true);
    this.view.setBigUint64(at + E_START, e.startTime, true);
    this.view.setFloat64(at + E_REGISTERED_AT, Date.now(), true);
    // A new generation: a heartbeat aimed at this slot's previous entry fails its compare-and-swap.
    const hbIndex = (at + E_HEARTBEAT) >> 3;
    const generation = (Number(Atomics.load(this.wide, hbIndex) >> 48n) + 1) & 0xffff;
    Atomics.store(this.wide, hbIndex, BigInt(generation) << 48n);
    this.view.setUint32(at + E_META_LENGTH, e.meta ? e.meta.length + 1 : 0, true);
    if (e.meta) e.meta.copy(this.bytes, at + E_META);
    this.writeName(at + E_NAME, e.name);
    this.writeName(at + E_CONTROL, e.controlChannel);
    this.writeName(at + E_REPLY, e.replyChannel);
    Atomics.store(this.words, (at + E_STATE) >> 2, LIVE);
    return generation;
  }

  /**
   * Frees a slot and records why, as a change event carrying the entry. A lease this thread holds is released;
   * one held by another live thread keeps the slot from being reused until that thread lets go or dies.
   */
  remove(slot: number, type: 'unregistered' | 'removed-dead'): void {
    this.emit(type, slot);
    Atomics.store(this.words, (this.entryOffset(slot) + E_STATE) >> 2, FREE);
    this.mem.handle.leaseRelease(this.leaseOffset(slot));
  }

  /** The entry in `slot`; `leased` when the caller already read its lease (a lease check may read /proc). */
  read(slot: number, leased: boolean = this.leaseState(slot) === 'held'): ServiceEntry {
    return this.decode(this.entryOffset(slot), leased);
  }

  /** Reads an entry, checking every field read from shared memory; IncompatibleError when one is out of range. */
  private decode(at: number, leased?: boolean): ServiceEntry {
    const heartbeat = Number(Atomics.load(this.wide, (at + E_HEARTBEAT) >> 3) & HEARTBEAT_MS_MASK);
    const metaLength = this.view.getUint32(at + E_META_LENGTH, true);
    const name = this.readName(at + E_NAME);
    const controlChannel = this.readName(at + E_CONTROL);
    const replyChannel = this.readName(at + E_REPLY);
    if (!NAME_RULE.test(name)) throw corrupt(`a registry entry (name ${JSON.stringify(name.slice(0, 63))})`);
    const pid = this.view.getUint32(at + E_PID, true);
    if (!NAME_RULE.test(controlChannel) || !NAME_RULE.test(replyChannel) || metaLength > META_MAX_BYTES + 1 || pid === 0 || pid > MAX_PID) {
      throw corrupt(`registry entry '${name}'`);
    }
    const entry: ServiceEntry = {
      name,
      controlChannel,
      replyChannel,
      pid,
      startTime: this.view.getBigUint64(at + E_START, true),
      registeredAt: new Date(this.view.getFloat64(at + E_REGISTERED_AT, true)),
    };
    if (heartbeat !== 0) entry.heartbeatAt = new Date(heartbeat);
    if (leased !== undefined) entry.leased = leased;
    if (metaLength !== 0) entry.meta = this.bytes.toString('utf8', at + E_META, at + E_META + metaLength - 1);
    return entry;
  }

  /**
   * Lock-free heartbeat: stamps the slot if it still holds the entry of `generation`. The compare-and-swap
   * on (generation, time) fails once the slot was reused, so a late heartbeat never stamps someone else.
   */
  stamp(slot: number, generation: number, nowMs: number): boolean {
    const index = (this.entryOffset(slot) + E_HEARTBEAT) >> 3;
    const next = (BigInt(generation) << 48n) | (BigInt(nowMs) & HEARTBEAT_MS_MASK);
    for (;;) {
      const old = Atomics.load(this.wide, index);
      if (Number(old >> 48n) !== generation || this.state(slot) !== LIVE) return false;
      if (Atomics.compareExchange(this.wide, index, old, next) === old) return true;
    }
  }

  /** The slot's generation, for a heartbeat that found the slot by scanning. */
  generation(slot: number): number {
    return Number(Atomics.load(this.wide, (this.entryOffset(slot) + E_HEARTBEAT) >> 3) >> 48n);
  }

  pidOf(slot: number): number {
    return this.view.getUint32(this.entryOffset(slot) + E_PID, true);
  }

  nameIs(slot: number, key: Buffer): boolean {
    return this.nameEquals(this.entryOffset(slot) + E_NAME, key);
  }

  // ---- change events ----

  private emit(type: ChangeType, slot: number): void {
    const seq = this.seq();
    const at = this.g.ring + (seq % this.g.ringCapacity) * EVENT_SIZE;
    const from = this.entryOffset(slot);
    this.bytes.copy(this.bytes, at + EV_ENTRY, from, from + ENTRY_SIZE);
    this.view.setUint32(at + EV_SEQ, seq, true);
    this.view.setUint32(at + EV_TYPE, EVENT_TYPES.indexOf(type), true);
    // The event exists once the sequence word says so: a writer killed before this store left nothing.
    Atomics.store(this.words, this.seqIndex, (seq + 1) | 0);
    this.changed = true;
  }

  /** Records an entry that was just written as a 'registered' event. */
  emitRegistered(slot: number): void {
    this.emit('registered', slot);
  }

  /** Wakes watchers after changes (and after a repair, in case a dead writer bumped seq but never woke). */
  publish(force = false): void {
    if (!this.changed && !force) return;
    this.changed = false;
    if (Atomics.load(this.words, this.waitersIndex) !== 0 || force) wake(this.mem, this.seqOffset);
  }

  /** The events after event number `from`; when more than the ring holds have passed, the live set instead. */
  eventsSince(from: number): EventRead {
    const seq = this.seq();
    const behind = (seq - from) >>> 0;
    if (behind > this.g.ringCapacity) return { seq, lagged: true, live: this.liveEntries() };
    const events: RegistryChange[] = [];
    for (let s = from; s !== seq; s = (s + 1) >>> 0) {
      const at = this.g.ring + (s % this.g.ringCapacity) * EVENT_SIZE;
      if (this.view.getUint32(at + EV_SEQ, true) !== s) return { seq, lagged: true, live: this.liveEntries() };
      const type = EVENT_TYPES[this.view.getUint32(at + EV_TYPE, true)] as ChangeType | '' | undefined;
      let entry: ServiceEntry | undefined;
      try {
        entry = type ? this.decode(at + EV_ENTRY) : undefined;
      } catch {
        entry = undefined;
      }
      // A corrupt event: resynchronise from the live set instead, like a watcher that fell behind.
      if (!type || !entry) return { seq, lagged: true, live: this.liveEntries() };
      events.push({ type, entry });
    }
    return { seq, lagged: false, events };
  }

  // ---- group records ----

  private groupOffset(index: number): number {
    return this.g.groups + index * GROUP_SIZE;
  }

  findGroup(key: Buffer): { index: number; free: number } {
    let free = -1;
    for (let index = 0; index < this.g.groupCapacity; index++) {
      const at = this.groupOffset(index);
      if (this.view.getUint32(at + G_STATE, true) === LIVE) {
        if (this.nameEquals(at + G_NAME, key)) return { index, free };
      } else if (free < 0) {
        free = index;
      }
    }
    return { index: -1, free };
  }

  /** Live entries that decode (a corrupt one is left out here; find() of it reports it). */
  liveEntries(): ServiceEntry[] {
    const entries: ServiceEntry[] = [];
    for (const slot of this.liveSlots()) {
      try {
        entries.push(this.read(slot));
      } catch (err) {
        if (!(err instanceof IncompatibleError)) throw err;
      }
    }
    return entries;
  }

  /** The record's current copy (0 or 1), checked: IncompatibleError for anything else. */
  private currentCopy(index: number): number {
    const current = this.view.getUint32(this.groupOffset(index) + G_CURRENT, true);
    if (current > 1) throw corrupt(`group record '${this.readName(this.groupOffset(index) + G_NAME)}'`);
    return current;
  }

  groupState(index: number): { epoch: number; primary?: string } {
    const at = this.groupOffset(index);
    const copy = at + G_COPY + this.currentCopy(index) * G_COPY_SIZE;
    const primary = this.readName(copy + 8);
    if (primary && !NAME_RULE.test(primary)) throw corrupt(`group record '${this.readName(at + G_NAME)}'`);
    return primary ? { epoch: this.view.getUint32(copy, true), primary } : { epoch: this.view.getUint32(copy, true) };
  }

  /** The live slot of exactly this entry (same name, process and registration time), or -1. */
  slotOf(e: ServiceEntry): number {
    const { slot } = this.findSlot(nameKey(e.name));
    if (slot < 0) return -1;
    const at = this.entryOffset(slot);
    const same =
      this.view.getUint32(at + E_PID, true) === e.pid &&
      this.view.getBigUint64(at + E_START, true) === e.startTime &&
      (!(e.registeredAt instanceof Date) || this.view.getFloat64(at + E_REGISTERED_AT, true) === e.registeredAt.getTime());
    return same ? slot : -1;
  }

  /**
   * One read of each live entry's lease: the held ones, with their holder (what a watcher watches), and whether
   * any says its holder died (entries to collect). One read, not two passes: a lease goes from held to broken
   * between two reads without a wake-up (its holder thread found dead in /proc before the kernel marks the
   * word), and an entry seen held by one pass and broken by the other would be neither watched nor collected.
   */
  leaseScan(): { held: Array<{ offset: number; pid: number; tid: number }>; broken: boolean } {
    const held: Array<{ offset: number; pid: number; tid: number }> = [];
    let broken = false;
    for (const slot of this.liveSlots()) {
      const offset = this.leaseOffset(slot);
      const state = this.mem.handle.leaseState(offset);
      if (state === 'owner-died') broken = true;
      if (state !== 'held') continue;
      const [pid, tid] = this.mem.handle.leaseHolder(offset);
      held.push({ offset, pid, tid });
    }
    return { held, broken };
  }

  groupLeaseState(index: number): LeaseState {
    return this.mem.handle.leaseState(this.groupLeaseOffset(index));
  }

  /** Byte offset of the group host's death lease. */
  groupLeaseOffset(index: number): number {
    return this.groupOffset(index) + G_HOST_LEASE;
  }

  createGroup(index: number, name: string): void {
    const at = this.groupOffset(index);
    this.view.setUint32(at + G_STATE, WRITING, true);
    this.bytes.fill(0, at + G_CURRENT, at + GROUP_SIZE);
    this.writeName(at + G_NAME, name);
    this.view.setUint32(at + G_STATE, LIVE, true);
  }

  /** Writes the spare copy, then makes it current with one store. */
  setGroup(index: number, epoch: number, primary: string): void {
    const at = this.groupOffset(index);
    const spare = 1 - this.currentCopy(index);
    const copy = at + G_COPY + spare * G_COPY_SIZE;
    this.view.setUint32(copy, epoch, true);
    this.writeName(copy + 8, primary);
    Atomics.store(this.words, (at + G_CURRENT) >> 2, spare);
  }

  // ---- recovery ----

  /** After a lock holder died: free what it left half-written. Returns how many slots were freed. */
  repair(): number {
    let freed = 0;
    for (let slot = 0; slot < this.g.capacity; slot++) {
      if (this.state(slot) === WRITING) {
        Atomics.store(this.words, (this.entryOffset(slot) + E_STATE) >> 2, FREE);
        freed++;
      }
    }
    for (let index = 0; index < this.g.groupCapacity; index++) {
      const at = this.groupOffset(index);
      if (this.view.getUint32(at + G_STATE, true) === WRITING) {
        this.view.setUint32(at + G_STATE, FREE, true);
        freed++;
      }
    }
    return freed;
  }

  // ---- names ----

  private writeName(at: number, name: string): void {
    this.bytes.fill(0, at, at + NAME_FIELD);
    this.bytes.write(name, at, NAME_FIELD - 1, 'latin1');
  }

  private readName(at: number): string {
    let end = at;
    while (end < at + NAME_FIELD - 1 && this.bytes[end] !== 0) end++;
    return this.bytes.toString('latin1', at, end);
  }
}

/** A name as its NUL-padded field, for comparisons without decoding every slot. */
export function nameKey(name: string): Buffer {
  const key = Buffer.alloc(NAME_FIELD);
  key.write(name, 0, NAME_FIELD - 1, 'latin1');
  return key;
}
