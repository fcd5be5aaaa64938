import { HEADER_SIZE, IDENTITY_SLOT_SIZE, IncompatibleError, LEASE_SIZE, type SharedMemory } from '@libipc/shm';

/**
 * Layout version 2 of a registry segment (2: entries and group records carry a death lease) `libipc.registry.<domain>`, after the 128-byte segment header
 * of @libipc/shm. All integers little-endian; every area starts 8-byte aligned. Described for other
 * languages in the package README ("Segment layout").
 */
export const KIND = 'registry';
export const LAYOUT_VERSION = 2;

export const DEFAULT_CAPACITY = 32;
export const MAX_CAPACITY = 8192;
/** Longest meta string, in UTF-8 bytes. Longer meta is refused, never truncated. */
export const META_MAX_BYTES = 256;
/** Processes that can have one registry open at the same time (dead ones are reaped). */
export const USER_CAPACITY = 256;
/** A name field: up to 63 bytes of [A-Za-z0-9._-], NUL-padded. */
export const NAME_FIELD = 64;

// Registry header (64 bytes), right after the segment header. Geometry words are written once at creation.
export const RH_CAPACITY = 0;
export const RH_SEQ = 4; // number of change events ever written (u32, wraps); futex word watchers sleep on
export const RH_WAITERS = 8; // processes sleeping on RH_SEQ: a change skips the wake-up syscall when 0
export const RH_GROUP_CAPACITY = 12;
export const RH_RING_CAPACITY = 16;
export const RH_USER_CAPACITY = 20;
export const RH_ENTRY_SIZE = 24;
export const RH_META_MAX = 28;
export const RH_EVENT_SIZE = 32;
export const RH_GROUP_SIZE = 36;
const REGISTRY_HEADER_SIZE = 64;

// Entry slot (608 bytes). A slot is filled while its state is WRITING and published by storing LIVE last,
// so a slot left WRITING by a process killed mid-write is never read as an entry (repair frees it).
export const ENTRY_SIZE = 512 + LEASE_SIZE;
export const E_STATE = 0; // u32: FREE, WRITING or LIVE
export const E_PID = 4; // u32
export const E_START = 8; // u64 start time (clock ticks since boot, /proc/<pid>/stat field 22)
export const E_REGISTERED_AT = 16; // f64 ms since the epoch
export const E_HEARTBEAT = 24; // u64: generation (16 bits) << 48 | heartbeat ms since the epoch (0 = never)
export const E_META_LENGTH = 32; // u32: meta bytes + 1, 0 = no meta
export const E_NAME = 40;
export const E_CONTROL = E_NAME + NAME_FIELD;
export const E_REPLY = E_CONTROL + NAME_FIELD;
export const E_META = E_REPLY + NAME_FIELD; // META_MAX_BYTES of UTF-8
/** The registering thread's death lease (@libipc/shm Lease, 96 bytes); "no lease" for a registration made for another pid. */
export const E_LEASE = 512;

export const FREE = 0;
export const WRITING = 1;
export const LIVE = 2;

// Group record (216 bytes): two copies of (epoch, primary) and the index of the current one, so that a
// claim is published by one store and a writer killed mid-claim leaves the previous copy in force.
export const GROUP_SIZE = 216 + LEASE_SIZE;
export const G_STATE = 0; // u32: FREE, WRITING or LIVE
export const G_CURRENT = 4; // u32: 0 or 1
export const G_NAME = 8;
export const G_COPY = 72; // two copies of: u32 epoch, u32 reserved, primary name field
export const G_COPY_SIZE = 8 + NAME_FIELD;
/** The group's host's death lease: members exit with their host the moment it dies. */
export const G_HOST_LEASE = 216;

// Change event (520 bytes) in a ring of ringCapacity events: event number s lives at index s % ringCapacity.
export const EVENT_SIZE = 8 + ENTRY_SIZE;
export const EV_SEQ = 0; // u32: s
export const EV_TYPE = 4; // u32: EVENT_TYPES index
export const EV_ENTRY = 8; // a copy of the entry slot
export const EVENT_TYPES = ['', 'registered', 'unregistered', 'removed-dead'] as const;

export interface Geometry {
  capacity: number;
  groupCapacity: number;
  ringCapacity: number;
  /** Offsets from the start of the segment. */
  registryHeader: number;
  users: number;
  entries: number;
  groups: number;
  ring: number;
  size: number;
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

export function geometry(capacity: number): Geometry {
  const groupCapacity = Math.max(16, capacity);
  const ringCapacity = nextPowerOfTwo(Math.max(256, capacity));
  const registryHeader = HEADER_SIZE;
  const users = registryHeader + REGISTRY_HEADER_SIZE;
  const entries = users + USER_CAPACITY * IDENTITY_SLOT_SIZE;
  const groups = entries + capacity * ENTRY_SIZE;
  const ring = groups + groupCapacity * GROUP_SIZE;
  const size = ring + ringCapacity * EVENT_SIZE;
  return { capacity, groupCapacity, ringCapacity, registryHeader, users, entries, groups, ring, size };
}

/** Writes the registry header of a new segment (the rest is zero: free slots, empty ring). */
export function initialise(mem: SharedMemory, g: Geometry): void {
  const view = new DataView(mem.buffer, g.registryHeader, REGISTRY_HEADER_SIZE);
  view.setUint32(RH_CAPACITY, g.capacity, true);
  view.setUint32(RH_GROUP_CAPACITY, g.groupCapacity, true);
  view.setUint32(RH_RING_CAPACITY, g.ringCapacity, true);
  view.setUint32(RH_USER_CAPACITY, USER_CAPACITY, true);
  view.setUint32(RH_ENTRY_SIZE, ENTRY_SIZE, true);
  view.setUint32(RH_META_MAX, META_MAX_BYTES, true);
  view.setUint32(RH_EVENT_SIZE, EVENT_SIZE, true);
  view.setUint32(RH_GROUP_SIZE, GROUP_SIZE, true);
}

/** Reads the geometry of an existing segment; anything that does not add up is refused, never read as entries. */
export function readGeometry(mem: SharedMemory): Geometry {
  const what = `segment ${mem.objectName.slice(1)}`;
  if (mem.size < HEADER_SIZE + REGISTRY_HEADER_SIZE) {
    throw new IncompatibleError(`${what} is corrupt: too small for a registry; remove it (no process is using it) and retry`);
  }
  const view = new DataView(mem.buffer, HEADER_SIZE, REGISTRY_HEADER_SIZE);
  const capacity = view.getUint32(RH_CAPACITY, true);
  const g = capacity >= 1 && capacity <= MAX_CAPACITY ? geometry(capacity) : undefined;
  const fits =
    g !== undefined &&
    view.getUint32(RH_GROUP_CAPACITY, true) === g.groupCapacity &&
    view.getUint32(RH_RING_CAPACITY, true) === g.ringCapacity &&
    view.getUint32(RH_USER_CAPACITY, true) === USER_CAPACITY &&
    view.getUint32(RH_ENTRY_SIZE, true) === ENTRY_SIZE &&
    view.getUint32(RH_META_MAX, true) === META_MAX_BYTES &&
    view.getUint32(RH_EVENT_SIZE, true) === EVENT_SIZE &&
    view.getUint32(RH_GROUP_SIZE, true) === GROUP_SIZE &&
    g.size === mem.size;
  if (!fits) {
    throw new IncompatibleError(
      `${what} is corrupt: its registry header (capacity ${capacity}, ${mem.size} bytes) does not match layout version ${LAYOUT_VERSION}; ` +
        'stop the processes using it, remove it from /dev/shm and retry',
    );
  }
  return g;
}
