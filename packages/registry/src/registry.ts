import {
  attachSegment,
  ClosedError,
  IdentityTable,
  IncompatibleError,
  InvalidArgumentError,
  isAlive,
  Lease,
  type LeaseState,
  type LeaseWatchOptions,
  describeValue,
  watchExit,
  MAX_TIMER_MS,
  option,
  parseOptions,
  NotFoundError,
  processIdentity,
  type ProcessIdentity,
  RegistryFullError,
  type SegmentHeader,
  selfIdentity,
  type SharedMemory,
  TimeoutError,
  validateName,
  validateTimeout,
  wait,
  wake,
} from '@libipc/shm';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RegistryChange, ServiceEntry } from './entry.js';
import { DEFAULT_CAPACITY, geometry, initialise, KIND, LAYOUT_VERSION, LIVE, MAX_CAPACITY, META_MAX_BYTES, readGeometry, USER_CAPACITY } from './layout.js';
import { nameKey, RegistryTable } from './table.js';
import { type LeasedSlot, LeaseWatchSet } from './lease-watch.js';
import { ChangeFeed } from './watch.js';

export interface RegistryOptions {
  /** Entries the domain holds; fixed when the segment is created (an opener uses the stored one). Default 32. */
  capacity?: number;
  /** Bound on waiting for the registry lock; a stopped holder makes operations fail with ERR_LIBIPC_TIMEOUT. Default 1000. */
  lockTimeoutMs?: number;
  /** Other uids whose registry segment this process may join (default: only its own uid's; docs/security.md). */
  allowUsers?: number[];
}

export interface RegisterOptions {
  /** Register another running process (e.g. a child you spawned); default this process. */
  pid?: number;
  /** Free text for the service's users, at most 256 UTF-8 bytes. */
  meta?: string;
}

export interface WaitForOptions {
  /** Resolve with undefined after this long (default: wait until registered or aborted). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_LOCK_TIMEOUT_MS = 1000;

const uids = option.custom<number[]>(
  (v) => Array.isArray(v) && v.length <= 1024 && v.every((u) => Number.isInteger(u) && u >= 0 && u <= 2 ** 32 - 1),
  'an array of uids (whole numbers)',
);
const REGISTRY_OPTIONS = {
  capacity: option.int(1, MAX_CAPACITY),
  lockTimeoutMs: option.ms(0, 60_000),
  allowUsers: uids,
};
const REGISTER_OPTIONS = {
  pid: option.int(1, 2 ** 31 - 1).describe('a process id (a positive whole number)'),
  meta: option.string(META_MAX_BYTES * 4),
};
const WAIT_FOR_OPTIONS = { timeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }), signal: option.signal() };
const WATCH_OPTIONS = { signal: option.signal() };
const WAIT_FOR_DEATH_OPTIONS = { timeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }), signal: option.signal(), ref: option.boolean() };

export interface WaitForDeathOptions {
  /** Reject with ERR_LIBIPC_TIMEOUT when the process still lives after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Keep the process alive while waiting (default true). */
  ref?: boolean;
}

/** An entry argument: a ServiceEntry from find/list/waitFor (its name and identity are what count). */
function checkEntry(entry: unknown): ServiceEntry {
  const e = entry as ServiceEntry;
  if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || !Number.isInteger(e.pid) || typeof e.startTime !== 'bigint') {
    throw new InvalidArgumentError(`entry must be a ServiceEntry returned by find, list or waitFor, got ${describeValue(entry)}`);
  }
  validateName(e.name, 'entry name');
  if (e.pid < 1) throw new InvalidArgumentError(`entry.pid must be a positive whole number, got ${e.pid}`);
  return e;
}

function validateCapacity(capacity: unknown): number {
  if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
    throw new InvalidArgumentError(`capacity must be a whole number from 1 to ${MAX_CAPACITY}, got ${String(capacity)}`);
  }
  return capacity;
}

function encodeMeta(meta: unknown): Buffer | undefined {
  if (meta === undefined) return undefined;
  if (typeof meta !== 'string') throw new InvalidArgumentError(`meta must be a string, got ${typeof meta}`);
  const bytes = Buffer.from(meta, 'utf8');
  if (bytes.length > META_MAX_BYTES) {
    throw new InvalidArgumentError(
      `meta is ${bytes.length} bytes of UTF-8, the most an entry holds is ${META_MAX_BYTES}; store a shorter string (e.g. a path or key to the rest)`,
    );
  }
  return bytes;
}

function identityOf(pid: unknown): ProcessIdentity {
  if (pid === undefined) return selfIdentity();
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || pid > 2 ** 31 - 1) {
    throw new InvalidArgumentError(`pid must be a positive whole number, got ${String(pid)}`);
  }
  const id = processIdentity(pid);
  if (!id) throw new InvalidArgumentError(`pid ${pid} is not a running process (or is a zombie); register a live process`);
  return id;
}

/** The previous lock holder died holding it: drop what it left half-written, wake watchers it may not have. */
function repair(table: RegistryTable, users: IdentityTable): void {
  table.repair();
  users.reap();
  table.publish(true);
}

function validatePrefix(prefix: unknown): string {
  if (prefix === '') return prefix;
  validateName(prefix, 'prefix');
  return prefix;
}

/**
 * A per-domain service registry in shared memory (`libipc.registry.<domain>`): every process that opens
 * the same domain sees the same entries. Crash-safe (robust lock, entries published by one store),
 * liveness by process identity, change notifications without polling.
 */
export class ServiceRegistry {
  readonly domain: string;
  /** Entries this domain holds (fixed by the process that created it). */
  readonly capacity: number;
  private readonly mem: SharedMemory;
  private readonly header: SegmentHeader;
  private readonly users: IdentityTable;
  private readonly table: RegistryTable;
  private readonly userSlot: number;
  private readonly lockTimeoutMs: number;
  /** Slots this handle registered, for the lock-free heartbeat's fast path. */
  /** Entries this handle registered: where they are, and their name field (so checks allocate nothing). */
  private readonly mine = new Map<string, { slot: number; generation: number; key: Buffer; leased: boolean }>();
  /** The change sequence number at which `mine` was last checked against the table (see #dropRemovedLeases). */
  #leasesCheckedAt = -1;
  private closed = false;

  constructor(domain = 'default', opts: RegistryOptions = {}) {
    validateName(domain, 'domain');
    const o = parseOptions(opts, REGISTRY_OPTIONS, 'ServiceRegistry options');
    const capacity = validateCapacity(o.capacity ?? DEFAULT_CAPACITY);
    // Bounded: registry operations are synchronous, a stopped lock holder must not freeze this process for long.
    const lockTimeoutMs = o.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.domain = domain;
    this.lockTimeoutMs = lockTimeoutMs;
    const attached = ServiceRegistry.#attach(domain, capacity, lockTimeoutMs, o.allowUsers);
    this.mem = attached.mem;
    this.header = attached.header;
    this.users = attached.users;
    this.table = attached.table;
    this.userSlot = attached.userSlot;
    this.capacity = attached.table.g.capacity;
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

  /**
   * Registers a service under `name`. Returns false when a live process already holds the name; an entry
   * of a dead process is replaced. Throws ERR_LIBIPC_REGISTRY_FULL when every slot holds a live entry.
   */
  register(name: string, controlChannel: string, replyChannel: string, opts: RegisterOptions = {}): boolean {
    validateName(name, 'service name');
    validateName(controlChannel, 'controlChannel');
    validateName(replyChannel, 'replyChannel');
    const o = parseOptions(opts, REGISTER_OPTIONS, 'register options');
    const meta = encodeMeta(o.meta);
    const who = identityOf(o.pid);
    const key = nameKey(name);
    return this.#locked((t) => {
      const found = t.findSlot(key);
      let free = found.free;
      if (found.slot >= 0) {
        if (t.isSlotAlive(found.slot)) return false;
        t.remove(found.slot, 'removed-dead');
        free = found.slot;
      }
      if (free < 0) free = this.#collectDead(t)[0] ?? -1;
      if (free < 0) {
        throw new RegistryFullError(
          `registry '${this.domain}' is full: all ${this.capacity} entries (its capacity) belong to live processes; ` +
            'unregister services you no longer need, call gc() to drop entries of dead processes, ' +
            'or recreate the domain with a larger { capacity }',
        );
      }
      // A registration of this process carries a death lease taken by this thread; one made for a given pid (even
      // our own) has none, and its liveness is the process identity alone.
      const generation = t.write(free, { name, controlChannel, replyChannel, pid: who.pid, startTime: who.startTime, meta }, o.pid === undefined);
      t.emitRegistered(free);
      this.mine.set(name, { slot: free, generation, key, leased: o.pid === undefined });
      return true;
    });
  }

  /** Removes `name` (only if held by `pid`, when given). False when there was no such entry. */
  unregister(name: string, pid?: number): boolean {
    validateName(name, 'service name');
    if (pid !== undefined && (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1)) {
      throw new InvalidArgumentError(`pid must be a positive whole number, got ${String(pid)}`);
    }
    const key = nameKey(name);
    return this.#locked((t) => {
      const { slot } = t.findSlot(key);
      if (slot < 0 || (pid !== undefined && t.pidOf(slot) !== pid)) return false;
      t.remove(slot, 'unregistered');
      this.mine.delete(name);
      return true;
    });
  }

  /** A copy of the live entry `name`, or undefined. An entry of a dead process is removed on the way. */
  find(name: string): ServiceEntry | undefined {
    validateName(name, 'service name');
    const key = nameKey(name);
    return this.#locked((t) => {
      const { slot } = t.findSlot(key);
      if (slot < 0) return undefined;
      const liveness = t.liveness(slot);
      if (liveness !== 'dead') return t.read(slot, liveness === 'leased');
      t.remove(slot, 'removed-dead');
      return undefined;
    });
  }

  /** Live entries whose name starts with `prefix` (e.g. 'audio_compute.'), sorted by name. */
  findAll(prefix: string): ServiceEntry[] {
    const key = Buffer.from(validatePrefix(prefix), 'latin1');
    return this.#locked((t) => this.#liveEntries(t, key));
  }

  /** Every live entry, sorted by name. */
  list(): ServiceEntry[] {
    return this.#locked((t) => this.#liveEntries(t));
  }

  /** Removes the entries of dead processes; returns how many. */
  gc(): number {
    return this.#locked((t) => this.#collectDead(t).length);
  }

  /** Removes every entry (each reported to watchers as 'unregistered'). Group records are kept: epochs only grow. */
  clear(): void {
    this.#locked((t) => {
      for (const slot of t.liveSlots()) t.remove(slot, 'unregistered');
      this.mine.clear();
    });
  }

  /**
   * Stamps the caller's entry `name` with the current time, without taking the lock: cheap enough to
   * call every few milliseconds. Throws ERR_LIBIPC_NOT_FOUND when this process holds no such entry.
   */
  heartbeat(name: string): void {
    this.#assertOpen();
    const now = Date.now();
    const cached = this.mine.get(name);
    if (cached && this.table.stamp(cached.slot, cached.generation, now)) return;
    validateName(name, 'service name');
    // Registered through another handle, or re-registered: find our slot without the lock.
    const key = nameKey(name);
    for (let slot = 0; slot < this.capacity; slot++) {
      const generation = this.table.generation(slot);
      if (this.table.pidOf(slot) !== process.pid || !this.table.nameIs(slot, key)) continue;
      if (this.table.stamp(slot, generation, now)) {
        this.mine.set(name, { slot, generation, key, leased: true }); // maybe: releasing a lease we do not hold is a no-op
        return;
      }
    }
    // Our entry was removed by someone else: let go of its lease, so that its slot can be used again.
    if (cached && !this.mem.isClosed) this.mem.handle.leaseRelease(this.table.leaseOffset(cached.slot));
    this.mine.delete(name);
    throw new NotFoundError(
      `process ${process.pid} holds no entry '${name}' in registry '${this.domain}' (never registered, unregistered or cleared); register it first`,
    );
  }

  /** The group's record: its epoch (0 before the first claim) and primary instance. */
  groupState(group: string): { epoch: number; primary?: string } {
    validateName(group, 'group');
    const key = nameKey(group);
    return this.#locked((t) => {
      const { index } = t.findGroup(key);
      return index < 0 ? { epoch: 0 } : t.groupState(index);
    });
  }

  /**
   * Compare-and-swap: if the group's epoch is still `expectedEpoch`, makes `instance` its primary and
   * returns the new epoch (expectedEpoch + 1); otherwise undefined (another claim won).
   */
  claimPrimary(group: string, instance: string, expectedEpoch: number): number | undefined {
    validateName(group, 'group');
    validateName(instance, 'instance');
    if (typeof expectedEpoch !== 'number' || !Number.isInteger(expectedEpoch) || expectedEpoch < 0 || expectedEpoch >= 2 ** 32 - 1) {
      throw new InvalidArgumentError(`expectedEpoch must be a whole number >= 0 (from groupState().epoch), got ${String(expectedEpoch)}`);
    }
    const key = nameKey(group);
    return this.#locked((t) => {
      const found = t.findGroup(key);
      let index = found.index;
      const current = index < 0 ? 0 : t.groupState(index).epoch;
      if (current !== expectedEpoch) return undefined;
      if (index < 0) {
        if (found.free < 0) {
          throw new RegistryFullError(
            `registry '${this.domain}' holds ${this.table.g.groupCapacity} group records, all in use; use fewer groups or recreate the domain with a larger { capacity }`,
          );
        }
        index = found.free;
        t.createGroup(index, group);
      }
      t.setGroup(index, expectedEpoch + 1, instance);
      return expectedEpoch + 1;
    });
  }

  /**
   * Every change from every process, in order, as it happens (the loop sleeps until then). Starts at the
   * call; list() after watch() gives the state the changes apply to. Ends on close() or when `signal` aborts.
   */
  watch(opts: { signal?: AbortSignal } = {}): AsyncIterableIterator<RegistryChange> {
    const signal = parseOptions(opts, WATCH_OPTIONS, 'watch options').signal;
    const feed = this.#locked((t) => new ChangeFeed(t.seq(), t.liveEntries()));
    return this.#changes(feed, signal);
  }

  async *#changes(feed: ChangeFeed, signal: AbortSignal | undefined): AsyncGenerator<RegistryChange> {
    // Leases of the live entries are watched too: a death is published ('removed-dead') the moment its lease breaks.
    const leases = new LeaseWatchSet(this.mem);
    try {
      while (!this.closed && !signal?.aborted) {
        let batch: RegistryChange[];
        let leased: LeasedSlot[];
        try {
          [batch, leased] = this.#locked((t) => {
            // A holder that died before we started watching its lease: publish its death now.
            if (t.hasBrokenLease()) this.#collectDead(t);
            return [feed.take(t.eventsSince(feed.position)), t.leasedSlots()] as const;
          });
        } catch (err) {
          if (this.closed) return;
          if (!(err instanceof TimeoutError)) throw err;
          // A stopped process holds the lock: try again later rather than end the stream.
          await sleep(this.lockTimeoutMs, undefined, { signal }).catch(() => undefined);
          continue;
        }
        for (const change of batch) {
          if (this.closed || signal?.aborted) return;
          yield change;
        }
        if (batch.length > 0) continue;
        leases.sync(leased);
        const woke = await Promise.race([
          this.#waitChange(feed.position, Infinity, signal),
          leases.broken().then(() => 'lease' as const),
        ]);
        if (woke === 'closed') return;
        if (woke === 'lease' && !this.closed) {
          try {
            this.#locked((t) => this.#collectDead(t)); // writes the 'removed-dead' events every watcher reads
          } catch (err) {
            if (!(err instanceof TimeoutError)) throw err;
          }
        }
      }
    } finally {
      leases.close();
    }
  }

  /**
   * Whether an entry's process (its registering thread, when the entry carries a lease) is alive now: the lease
   * first — broken by the kernel the moment its holder dies — then the process identity (pid + start time).
   */
  isAlive(entry: ServiceEntry): boolean {
    const e = checkEntry(entry);
    return this.#locked((t) => {
      const slot = t.slotOf(e);
      return slot >= 0 ? t.isSlotAlive(slot) : isAlive(e.pid, e.startTime);
    });
  }

  /**
   * Resolves when the entry's process is dead: 'owner-died' as soon as the kernel breaks its lease (before a large
   * process's memory is torn down), else 'exited' when the process is gone (its exit, watched with a pidfd) —
   * whichever comes first. Rejects with the signal's reason, or ERR_LIBIPC_TIMEOUT after timeoutMs.
   */
  async waitForDeath(entry: ServiceEntry, opts: WaitForDeathOptions = {}): Promise<'owner-died' | 'exited'> {
    const e = checkEntry(entry);
    const o = parseOptions(opts, WAIT_FOR_DEATH_OPTIONS, 'waitForDeath options');
    const leaseAt = this.#locked((t) => {
      const slot = t.slotOf(e);
      return slot >= 0 && t.leaseState(slot) !== 'free' ? t.leaseOffset(slot) : undefined;
    });
    const stop = new AbortController();
    const onAbort = () => stop.abort(o.signal?.reason);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = o.timeoutMs === undefined || o.timeoutMs === Infinity
      ? undefined
      : setTimeout(() => stop.abort(new TimeoutError(`'${e.name}' (pid ${e.pid}) was still alive after ${o.timeoutMs} ms`)), o.timeoutMs);
    const ref = o.ref ?? true;
    try {
      const exited = watchExit(e.pid, e.startTime, { signal: stop.signal, ref }).then(() => 'exited' as const);
      if (leaseAt === undefined) return await exited;
      const holder = this.mem.handle.leaseHolder(leaseAt);
      const broken = Lease.watch(this.mem, leaseAt, { holder: { pid: holder[0], tid: holder[1] }, signal: stop.signal, ref: false }).then(
        // Released (unregistered while alive): only the process's exit tells now.
        (outcome) => (outcome === 'owner-died' ? ('owner-died' as const) : exited),
      );
      return await Promise.race([broken, exited]);
    } catch (err) {
      if (stop.signal.aborted && stop.signal.reason !== undefined) throw stop.signal.reason;
      if (err instanceof ClosedError || this.closed) throw new ClosedError(`registry '${this.domain}' was closed while waiting for '${e.name}' to die`);
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  /**
   * Takes the group's host lease on this thread (creating the group record if needed): the group's members
   * watch it (watchGroupLease) to exit the moment their host dies. False when another live thread holds it.
   */
  holdGroupLease(group: string): boolean {
    validateName(group, 'group');
    const key = nameKey(group);
    return this.#locked((t) => {
      const found = t.findGroup(key);
      let index = found.index;
      if (index < 0) {
        if (found.free < 0) {
          throw new RegistryFullError(`registry '${this.domain}' holds ${this.table.g.groupCapacity} group records, all in use; use fewer groups`);
        }
        index = found.free;
        t.createGroup(index, group);
      }
      return this.mem.handle.leaseAcquire(t.groupLeaseOffset(index));
    });
  }

  /** Releases the group's host lease if this thread holds it (its watchers see 'released'). */
  releaseGroupLease(group: string): boolean {
    validateName(group, 'group');
    const key = nameKey(group);
    return this.#locked((t) => {
      const { index } = t.findGroup(key);
      return index >= 0 && this.mem.handle.leaseRelease(t.groupLeaseOffset(index));
    });
  }

  /** The group's host lease now: 'held', 'released', 'owner-died', or 'free' (no host ever held it). */
  groupLeaseState(group: string): LeaseState {
    validateName(group, 'group');
    const key = nameKey(group);
    return this.#locked((t) => {
      const { index } = t.findGroup(key);
      return index < 0 ? 'free' : t.groupLeaseState(index);
    });
  }

  /** Resolves when the group's host lease is no longer held: 'owner-died' (the host died) or 'released'. */
  async watchGroupLease(group: string, opts: LeaseWatchOptions = {}): Promise<'released' | 'owner-died'> {
    validateName(group, 'group');
    const key = nameKey(group);
    const at = this.#locked((t) => {
      const { index } = t.findGroup(key);
      return index < 0 ? undefined : t.groupLeaseOffset(index);
    });
    if (at === undefined) return 'released';
    return Lease.watch(this.mem, at, opts);
  }

  /**
   * Resolves with the entry as soon as `name` is registered (at once if it is), or undefined after
   * `timeoutMs`. Rejects with the signal's reason on abort, ERR_LIBIPC_CLOSED on close().
   */
  async waitFor(name: string, opts: WaitForOptions = {}): Promise<ServiceEntry | undefined> {
    validateName(name, 'service name');
    const o = parseOptions(opts, WAIT_FOR_OPTIONS, 'waitFor options');
    const timeout = validateTimeout(o.timeoutMs);
    const signal = o.signal;
    const deadline = performance.now() + timeout;
    for (;;) {
      signal?.throwIfAborted();
      this.#assertOpen();
      const seen = this.table.seq();
      const entry = this.find(name);
      if (entry) return entry;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      if ((await this.#waitChange(seen, left, signal)) === 'closed') {
        throw new ClosedError(`registry '${this.domain}' was closed while waiting for '${name}'`);
      }
    }
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
      this.mine.clear();
      this.mem.close();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- internals ----

  #assertOpen(): void {
    if (this.closed) throw new ClosedError(`registry '${this.domain}' is closed; open a new ServiceRegistry to use it`);
  }

  /** Runs a short synchronous critical section under the segment lock, bounded by lockTimeoutMs. */
  #locked<T>(fn: (t: RegistryTable) => T): T {
    this.#assertOpen();
    const { ownerDied } = this.header.lock.lockSync(this.lockTimeoutMs);
    try {
      if (ownerDied) repair(this.table, this.users);
      this.#dropRemovedLeases();
      const result = fn(this.table);
      this.table.publish();
      return result;
    } finally {
      this.header.lock.unlock();
    }
  }

  /**
   * Another process removed (unregistered, cleared) an entry of ours: let go of its lease, so that its slot can be
   * used again (a slot whose lease a live thread holds is never reused). Caller holds the lock.
   */
  #dropRemovedLeases(): void {
    // Only a published change (every removal is one) can have removed an entry of ours since the last look.
    const seq = this.table.seq();
    if (seq === this.#leasesCheckedAt) return;
    this.#leasesCheckedAt = seq;
    for (const [name, { slot, generation, key, leased }] of this.mine) {
      // An entry without a lease holds nothing here; heartbeat() drops its record when it finds it gone.
      if (!leased || (this.table.state(slot) === LIVE && this.table.generation(slot) === generation && this.table.nameIs(slot, key))) continue;
      this.mem.handle.leaseRelease(this.table.leaseOffset(slot));
      this.mine.delete(name);
    }
  }

  #liveEntries(t: RegistryTable, prefix?: Buffer): ServiceEntry[] {
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
  #collectDead(t: RegistryTable): number[] {
    const freed: number[] = [];
    const seen = new Map<number, bigint | undefined>();
    for (const slot of t.liveSlots()) {
      if (t.isSlotAlive(slot, seen)) continue;
      t.remove(slot, 'removed-dead');
      freed.push(slot);
    }
    return freed;
  }

  /** Sleeps until the change counter moves past `seen` (or timeout, abort, close) without polling. */
  async #waitChange(
    seen: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<'changed' | 'timed-out' | 'aborted' | 'closed'> {
    if (this.closed) return 'closed';
    if (signal?.aborted) return 'aborted';
    const table = this.table;
    let settled = false;
    // A wake that slips in before the waiter thread sleeps is lost: repeat until the wait has returned.
    const onAbort = () => {
      if (settled || this.mem.isClosed) return;
      wake(this.mem, table.seqOffset);
      setTimeout(onAbort, 5);
    };
    table.addWaiter(1);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const outcome = await wait(this.mem, table.seqOffset, seen, timeoutMs);
      if (signal?.aborted) return 'aborted';
      return outcome === 'timed-out' ? 'timed-out' : 'changed';
    } catch (err) {
      if (err instanceof ClosedError) return 'closed';
      throw err;
    } finally {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (!this.mem.isClosed) table.addWaiter(-1);
    }
  }
}
