// Lease bookkeeping: the entries this handle registered, where they are, and whether this thread holds their
// death lease; so heartbeat() is lock-free and a lease is let go once another process removed its entry.
import { type SharedMemory, validateName } from '@libipc/shm';
import { LIVE } from './layout.js';
import { nameKey, type RegistryTable } from './table.js';

interface OwnEntry {
  slot: number;
  generation: number;
  /** The name field, so checks allocate nothing. */
  key: Buffer;
  leased: boolean;
}

export class OwnEntries {
  readonly #mem: SharedMemory;
  readonly #table: RegistryTable;
  readonly #capacity: number;
  readonly #entries = new Map<string, OwnEntry>();
  /** The change sequence number at which the entries were last checked against the table (see dropRemoved). */
  #checkedAt = -1;

  constructor(mem: SharedMemory, table: RegistryTable, capacity: number) {
    this.#mem = mem;
    this.#table = table;
    this.#capacity = capacity;
  }

  record(name: string, slot: number, generation: number, key: Buffer, leased: boolean): void {
    this.#entries.set(name, { slot, generation, key, leased });
  }

  forget(name: string): void {
    this.#entries.delete(name);
  }

  clear(): void {
    this.#entries.clear();
  }

  /**
   * Another process removed (unregistered, cleared) an entry of ours: let go of its lease, so that its slot can be
   * used again (a slot whose lease a live thread holds is never reused). Caller holds the lock.
   */
  dropRemoved(): void {
    // Only a published change (every removal is one) can have removed an entry of ours since the last look.
    const table = this.#table;
    const seq = table.seq();
    if (seq === this.#checkedAt) return;
    this.#checkedAt = seq;
    for (const [name, { slot, generation, key, leased }] of this.#entries) {
      // An entry without a lease holds nothing here; heartbeat() drops its record when it finds it gone.
      if (!leased || (table.state(slot) === LIVE && table.generation(slot) === generation && table.nameIs(slot, key))) continue;
      this.#mem.handle.leaseRelease(table.leaseOffset(slot));
      this.#entries.delete(name);
    }
  }

  /**
   * Stamps this process's entry `name` with `now`, without the lock. False when it holds no such entry (its
   * record, and the lease of an entry someone else removed, are let go first).
   */
  stamp(name: string, now: number): boolean {
    const table = this.#table;
    const cached = this.#entries.get(name);
    if (cached && table.stamp(cached.slot, cached.generation, now)) return true;
    validateName(name, 'service name');
    // Registered through another handle, or re-registered: find our slot without the lock.
    const key = nameKey(name);
    for (let slot = 0; slot < this.#capacity; slot++) {
      const generation = table.generation(slot);
      if (table.pidOf(slot) !== process.pid || !table.nameIs(slot, key)) continue;
      if (table.stamp(slot, generation, now)) {
        this.record(name, slot, generation, key, true); // maybe: releasing a lease we do not hold is a no-op
        return true;
      }
    }
    // Our entry was removed by someone else: let go of its lease, so that its slot can be used again.
    if (cached && !this.#mem.isClosed) this.#mem.handle.leaseRelease(table.leaseOffset(cached.slot));
    this.#entries.delete(name);
    return false;
  }
}
