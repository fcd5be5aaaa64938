// One handle's hold on a domain's segment `libipc.registry.<domain>`: attaching (as one of its users), short
// critical sections under the segment lock (repairing after a holder that died), and detaching.
import {
  attachSegment,
  ClosedError,
  IdentityTable,
  IncompatibleError,
  RegistryFullError,
  type SegmentHeader,
  type SharedMemory,
  TimeoutError,
} from '@libipc/shm';
import type { ServiceEntry } from './entry.js';
import { geometry, initialise, KIND, LAYOUT_VERSION, readGeometry, USER_CAPACITY } from './layout.js';
import { OwnEntries } from './own-entries.js';
import { RegistryTable } from './table.js';

/** The previous lock holder died holding it: drop what it left half-written, wake watchers it may not have. */
function repair(table: RegistryTable, users: IdentityTable): void {
  table.repair();
  users.reap();
  table.publish(true);
}

export class Domain {
  readonly name: string;
  /** Entries the domain holds (fixed by the process that created it). */
  readonly capacity: number;
  readonly lockTimeoutMs: number;
  readonly mem: SharedMemory;
  readonly header: SegmentHeader;
  readonly users: IdentityTable;
  readonly table: RegistryTable;
  readonly userSlot: number;
  /** Entries this handle registered (lease bookkeeping). */
  readonly own: OwnEntries;
  closed = false;

  constructor(name: string, capacity: number, lockTimeoutMs: number, allowUsers: number[] | undefined) {
    this.name = name;
    this.lockTimeoutMs = lockTimeoutMs;
    const attached = Domain.#attach(name, capacity, lockTimeoutMs, allowUsers);
    this.mem = attached.mem;
    this.header = attached.header;
    this.users = attached.users;
    this.table = attached.table;
    this.userSlot = attached.userSlot;
    this.capacity = attached.table.g.capacity;
    this.own = new OwnEntries(this.mem, this.table, this.capacity);
  }

  /** Attaches to the domain's segment (creating it if needed) and records this process as a user. */
  static #attach(domain: string, capacity: number, lockTimeoutMs: number, allowUsers: number[] | undefined) {
    const created = geometry(capacity);
    for (let attempt = 0; attempt < 100; attempt++) {
      const seg = attachSegment({
        kind: KIND,
        name: domain,
        layoutVersion: LAYOUT_VERSION,
        size: created.size,
        init: (mem) => initialise(mem, created),
        allowUsers,
      });
      let userSlot = -1;
      try {
        const g = readGeometry(seg.mem);
        const users = new IdentityTable(seg.mem, g.users, USER_CAPACITY);
        const table = new RegistryTable(seg.mem, g);
        const { ownerDied } = seg.header.lock.lockSync(lockTimeoutMs);
        try {
          if (ownerDied) repair(table, users);
          // The last user retired it between our attach and our lock: attach again (to a new one).
          if (seg.header.state !== 'retired') {
            users.reap();
            userSlot = users.add();
            if (userSlot < 0) {
              throw new RegistryFullError(
                `registry '${domain}' already has ${users.capacity} processes attached, the most it tracks; close registries that are not in use`,
              );
            }
          }
        } finally {
          seg.header.lock.unlock();
        }
        if (userSlot >= 0) return { mem: seg.mem, header: seg.header, users, table, userSlot };
      } catch (err) {
        seg.mem.close();
        throw err;
      }
      seg.mem.close();
    }
    throw new TimeoutError(`registry '${domain}' keeps being removed while opening it; retry later`);
  }

  assertOpen(): void {
    if (this.closed) throw new ClosedError(`registry '${this.name}' is closed; open a new ServiceRegistry to use it`);
  }

  /** Runs a short synchronous critical section under the segment lock, bounded by lockTimeoutMs. */
  locked<T>(fn: (t: RegistryTable) => T): T {
    this.assertOpen();
    const { ownerDied } = this.header.lock.lockSync(this.lockTimeoutMs);
    try {
      if (ownerDied) repair(this.table, this.users);
      this.own.dropRemoved();
      const result = fn(this.table);
      this.table.publish();
      return result;
    } finally {
      this.header.lock.unlock();
    }
  }

  /** The live entries (whose name starts with `prefix`), sorted by name; dead ones are removed on the way. */
  liveEntries(t: RegistryTable, prefix?: Buffer): ServiceEntry[] {
    const entries: ServiceEntry[] = [];
    const seen = new Map<number, bigint | undefined>();
    for (const slot of t.liveSlots(prefix)) {
      const liveness = t.liveness(slot, seen);
      if (liveness === 'dead') {
        t.remove(slot, 'removed-dead');
        continue;
      }
      try {
        entries.push(t.read(slot, liveness === 'leased'));
      } catch (err) {
        // A corrupt entry is left out of lists (find() of its name reports it as ERR_LIBIPC_INCOMPATIBLE).
        if (!(err instanceof IncompatibleError)) throw err;
      }
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Removes dead entries; returns the freed slots. */
  collectDead(t: RegistryTable): number[] {
    const freed: number[] = [];
    const seen = new Map<number, bigint | undefined>();
    for (const slot of t.liveSlots()) {
      if (t.isSlotAlive(slot, seen)) continue;
      t.remove(slot, 'removed-dead');
      freed.push(slot);
    }
    return freed;
  }

  /**
   * Detaches. The last process to close a registry with no live entries removes its segment, marking it
   * retired under the lock first so that a process opening it at that moment creates a new one.
   */
  close(): void {
    if (this.closed) return;
    try {
      const { ownerDied } = this.header.lock.lockSync(this.lockTimeoutMs);
      try {
        if (ownerDied) repair(this.table, this.users);
        this.users.remove(this.userSlot);
        this.users.reap();
        const seen = new Map<number, bigint | undefined>();
        const liveEntry = this.table.liveSlots().some((slot) => this.table.isSlotAlive(slot, seen));
        if (this.users.used().length === 0 && !liveEntry) this.header.retire();
      } finally {
        this.header.lock.unlock();
      }
    } catch (err) {
      // A stopped lock holder: detach anyway (one store); whoever closes last removes the segment.
      if (!(err instanceof TimeoutError)) throw err;
      this.users.remove(this.userSlot);
    } finally {
      this.closed = true;
      this.own.clear();
      this.mem.close();
    }
  }
}
