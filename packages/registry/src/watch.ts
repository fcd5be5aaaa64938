import { isAlive } from '@libipc/shm';
import type { RegistryChange, ServiceEntry } from './entry.js';
import type { EventRead } from './table.js';

function sameEntry(a: ServiceEntry, b: ServiceEntry): boolean {
  return a.pid === b.pid && a.startTime === b.startTime && a.registeredAt.getTime() === b.registeredAt.getTime();
}

/**
 * One watcher's position in the change ring, and the set of entries it has been told about. Normally it
 * passes the ring's events on; a watcher that fell more than the ring behind re-reads the live set and
 * reports the difference instead, so it never misses the end state.
 */
export class ChangeFeed {
  /** The event number to read next. */
  position: number;
  private readonly known = new Map<string, ServiceEntry>();

  constructor(seq: number, live: ServiceEntry[]) {
    this.position = seq;
    for (const e of live) this.known.set(e.name, e);
  }

  take(read: EventRead): RegistryChange[] {
    this.position = read.seq;
    const changes = read.lagged ? this.diff(read.live) : read.events;
    for (const c of changes) {
      if (c.type === 'registered') this.known.set(c.entry.name, c.entry);
      else this.known.delete(c.entry.name);
    }
    return changes;
  }

  private diff(live: ServiceEntry[]): RegistryChange[] {
    const now = new Map(live.map((e) => [e.name, e]));
    const changes: RegistryChange[] = [];
    for (const [name, old] of this.known) {
      const current = now.get(name);
      if (current && sameEntry(current, old)) continue;
      const type = isAlive(old.pid, old.startTime) ? 'unregistered' : 'removed-dead';
      changes.push({ type, entry: old });
    }
    for (const [name, current] of now) {
      const old = this.known.get(name);
      if (!old || !sameEntry(current, old)) changes.push({ type: 'registered', entry: current });
    }
    return changes;
  }
}
