import { IdentityTable, IncompatibleError, isAliveIdentity, validateName, withSegment } from '@libipc/shm';
import type { ServiceEntry } from './entry.js';
import { E_HEARTBEAT, E_STATE, G_COPY, G_COPY_SIZE, G_CURRENT, G_NAME, G_STATE, GROUP_SIZE, KIND, LAYOUT_VERSION, LIVE, NAME_FIELD, readGeometry, USER_CAPACITY } from './layout.js';
import { RegistryTable } from './table.js';

// A read-only look at a registry domain for tools (`libipc ls`, `libipc shm ls`): it neither joins the domain
// (no identity slot), nor takes its lock, nor removes dead entries. Slots are read lock-free and kept only when
// the slot's state and generation are the same before and after the copy (a writer changes both).

const NAME_RULE = /^[A-Za-z0-9._-]{1,63}$/;
const TRIES = 4;

export interface InspectedEntry extends ServiceEntry {
  /** By identity (pid + start time): false for a dead process, a zombie or a reused pid. */
  alive: boolean;
}

export interface InspectedGroup {
  name: string;
  epoch: number;
  primary?: string;
}

export interface RegistrySnapshot {
  domain: string;
  capacity: number;
  /** Every entry in the table, dead ones included (sorted by name). */
  entries: InspectedEntry[];
  groups: InspectedGroup[];
  /** Processes attached to the domain (its identity table), dead ones included until someone reaps them. */
  users: Array<{ pid: number; startTime: bigint; alive: boolean }>;
  /** Change events written so far (u32, wraps). */
  sequence: number;
  state: string;
}

/**
 * Reads the registry domain `domain` as it is now, without joining or changing it. ERR_LIBIPC_NOT_FOUND when
 * the domain does not exist; ERR_LIBIPC_INCOMPATIBLE for a segment of another kind, version or a corrupt one.
 */
export function inspectRegistry(domain: string): RegistrySnapshot {
  validateName(domain, 'domain');
  return withSegment(KIND, domain, (mem, header) => {
    if (header.layoutVersion !== LAYOUT_VERSION) {
      throw new IncompatibleError(`registry '${domain}' has layout version ${header.layoutVersion}, this code reads ${LAYOUT_VERSION}`);
    }
    const g = readGeometry(mem);
    const table = new RegistryTable(mem, g);
    const view = new DataView(mem.buffer, 0, mem.size);
    const words = new Int32Array(mem.buffer, 0, mem.size >> 2);
    const wide = new BigUint64Array(mem.buffer, 0, mem.size >> 3);
    const generation = (slot: number) => Atomics.load(wide, (table.entryOffset(slot) + E_HEARTBEAT) >> 3) >> 48n;
    const slotState = (slot: number) => Atomics.load(words, (table.entryOffset(slot) + E_STATE) >> 2);

    const entries: InspectedEntry[] = [];
    for (let slot = 0; slot < g.capacity; slot++) {
      for (let attempt = 0; attempt < TRIES; attempt++) {
        if (slotState(slot) !== LIVE) break;
        const before = generation(slot);
        let entry: ServiceEntry | undefined;
        try {
          entry = table.read(slot);
        } catch (err) {
          if (!(err instanceof IncompatibleError)) throw err;
        }
        if (slotState(slot) !== LIVE || generation(slot) !== before) continue; // rewritten meanwhile: read again
        if (entry) entries.push({ ...entry, alive: isAliveIdentity(entry.pid, entry.startTime) });
        break; // a corrupt slot is left out, like list() does
      }
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

    const bytes = Buffer.from(mem.buffer, 0, mem.size);
    const readName = (at: number) => {
      let end = at;
      while (end < at + NAME_FIELD - 1 && bytes[end] !== 0) end++;
      return bytes.toString('latin1', at, end);
    };
    const groups: InspectedGroup[] = [];
    for (let index = 0; index < g.groupCapacity; index++) {
      const at = g.groups + index * GROUP_SIZE;
      for (let attempt = 0; attempt < TRIES; attempt++) {
        if (view.getUint32(at + G_STATE, true) !== LIVE) break;
        const current = Atomics.load(words, (at + G_CURRENT) >> 2);
        if (current !== 0 && current !== 1) break; // corrupt: skipped
        const copy = at + G_COPY + current * G_COPY_SIZE;
        const name = readName(at + G_NAME);
        const epoch = view.getUint32(copy, true);
        const primary = readName(copy + 8);
        if (Atomics.load(words, (at + G_CURRENT) >> 2) !== current) continue; // a claim flipped it: read again
        if (!NAME_RULE.test(name) || (primary !== '' && !NAME_RULE.test(primary))) break;
        groups.push(primary ? { name, epoch, primary } : { name, epoch });
        break;
      }
    }
    groups.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

    const identities = new IdentityTable(mem, g.users, USER_CAPACITY);
    const users: RegistrySnapshot['users'] = [];
    for (const slot of identities.used()) {
      const id = identities.identity(slot);
      if (id) users.push({ pid: id.pid, startTime: id.startTime, alive: isAliveIdentity(id.pid, id.startTime) });
    }
    return { domain, capacity: g.capacity, entries, groups, users, sequence: table.seq(), state: header.state };
  });
}
