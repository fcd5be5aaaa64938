import { describeValue } from './describe.js';
import { InvalidArgumentError } from './errors.js';
import { isAlive, type ProcessIdentity, selfIdentity } from './process-identity.js';
import type { SharedMemory } from './shared-memory.js';
import { validateMemory } from './validate.js';

/** Linux pids are below 2^22 (PID_MAX_LIMIT). */
const MAX_PID = 2 ** 22 - 1;

/** Bytes per slot: u32 pid (0 = free), u32 user tag, u64 start time. */
export const IDENTITY_SLOT_SIZE = 16;

/**
 * A fixed table of process identities in shared memory: who is attached to a segment. Structures use it
 * to count live users, find the last one, and reap the slots of processes that died without detaching.
 * Not synchronised: call it while holding the segment's lock.
 */
export class IdentityTable {
  private readonly view: DataView;
  readonly capacity: number;

  constructor(mem: SharedMemory, byteOffset: number, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) {
      throw new InvalidArgumentError(`capacity must be a whole number from 1 to ${1 << 20}, got ${describeValue(capacity)}`);
    }
    validateMemory(mem);
    mem.assertOpen();
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0 || byteOffset + capacity * IDENTITY_SLOT_SIZE > mem.size) {
      throw new InvalidArgumentError(`identity table of ${describeValue(capacity)} slots does not fit at offset ${describeValue(byteOffset)}`);
    }
    this.view = new DataView(mem.buffer, byteOffset, capacity * IDENTITY_SLOT_SIZE);
    this.capacity = capacity;
  }

  static bytes(capacity: number): number {
    if (!Number.isInteger(capacity) || capacity < 0) throw new InvalidArgumentError(`capacity must be a whole number >= 0, got ${describeValue(capacity)}`);
    return capacity * IDENTITY_SLOT_SIZE;
  }

  private at(slot: unknown): number {
    if (!Number.isInteger(slot) || (slot as number) < 0 || (slot as number) >= this.capacity) {
      throw new InvalidArgumentError(`slot must be a whole number from 0 to ${this.capacity - 1}, got ${describeValue(slot)}`);
    }
    return (slot as number) * IDENTITY_SLOT_SIZE;
  }

  pid(slot: number): number {
    return this.view.getUint32(this.at(slot), true);
  }
  tag(slot: number): number {
    return this.view.getUint32(this.at(slot) + 4, true);
  }
  identity(slot: number): ProcessIdentity | undefined {
    const pid = this.pid(slot);
    return pid === 0 ? undefined : { pid, startTime: this.view.getBigUint64(slot * IDENTITY_SLOT_SIZE + 8, true) };
  }

  /** Records a process (this one by default) in a free slot; returns the slot, or -1 when full. */
  add(tag = 0, who: ProcessIdentity = selfIdentity()): number {
    if (!Number.isInteger(tag) || tag < 0 || tag > 2 ** 32 - 1) throw new InvalidArgumentError(`tag must be a u32, got ${describeValue(tag)}`);
    if (typeof who !== 'object' || who === null || !Number.isInteger(who.pid) || who.pid < 1 || typeof who.startTime !== 'bigint') {
      throw new InvalidArgumentError(`who must be a process identity { pid, startTime }, got ${describeValue(who)}`);
    }
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.pid(slot) !== 0) continue;
      this.view.setBigUint64(slot * IDENTITY_SLOT_SIZE + 8, who.startTime, true);
      this.view.setUint32(slot * IDENTITY_SLOT_SIZE + 4, tag, true);
      this.view.setUint32(slot * IDENTITY_SLOT_SIZE, who.pid, true);
      return slot;
    }
    return -1;
  }

  remove(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.capacity) return; // a slot read back from a corrupt segment
    this.view.setUint32(slot * IDENTITY_SLOT_SIZE, 0, true);
  }

  /** A slot whose pid is not a possible pid (a corrupt segment) is dead, never an error. */
  isLive(slot: number): boolean {
    const id = this.identity(slot);
    return id !== undefined && id.pid <= MAX_PID && isAlive(id.pid, id.startTime);
  }

  /** Frees the slots of dead processes; returns the freed slots. */
  reap(): number[] {
    const freed: number[] = [];
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.pid(slot) !== 0 && !this.isLive(slot)) {
        this.remove(slot);
        freed.push(slot);
      }
    }
    return freed;
  }

  /** Occupied slots (live or not yet reaped). */
  used(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.capacity; slot++) if (this.pid(slot) !== 0) slots.push(slot);
    return slots;
  }
}
