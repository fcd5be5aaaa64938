// The public ServiceRegistry: each call checks its arguments, then works on the domain's segment (domain.ts)
// under its lock; lease bookkeeping is own-entries.ts, watching and waiting watching.ts.
import {
  InvalidArgumentError,
  isAlive,
  type LeaseState,
  type LeaseWatchOptions,
  Lease,
  NotFoundError,
  parseOptions,
  RegistryFullError,
  validateName,
} from '@libipc/shm';
import { Domain } from './domain.js';
import type { RegistryChange, ServiceEntry } from './entry.js';
import { DEFAULT_CAPACITY } from './layout.js';
import {
  checkEntry,
  DEFAULT_LOCK_TIMEOUT_MS,
  encodeMeta,
  identityOf,
  REGISTER_OPTIONS,
  type RegisterOptions,
  REGISTRY_OPTIONS,
  type RegistryOptions,
  validateCapacity,
  validatePrefix,
  type WaitForDeathOptions,
  type WaitForOptions,
  WATCH_OPTIONS,
} from './options.js';
import { nameKey } from './table.js';
import { ChangeFeed } from './watch.js';
import { changes, waitFor, waitForDeath } from './watching.js';

export type { RegisterOptions, RegistryOptions, WaitForDeathOptions, WaitForOptions } from './options.js';

/**
 * A per-domain service registry in shared memory (`libipc.registry.<domain>`): every process that opens
 * the same domain sees the same entries. Crash-safe (robust lock, entries published by one store),
 * liveness by process identity, change notifications without polling.
 */
export class ServiceRegistry {
  readonly domain: string;
  /** Entries this domain holds (fixed by the process that created it). */
  readonly capacity: number;
  readonly #d: Domain;

  constructor(domain = 'default', opts: RegistryOptions = {}) {
    validateName(domain, 'domain');
    const o = parseOptions(opts, REGISTRY_OPTIONS, 'ServiceRegistry options');
    const capacity = validateCapacity(o.capacity ?? DEFAULT_CAPACITY);
    // Bounded: registry operations are synchronous, a stopped lock holder must not freeze this process for long.
    const lockTimeoutMs = o.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.domain = domain;
    this.#d = new Domain(domain, capacity, lockTimeoutMs, o.allowUsers);
    this.capacity = this.#d.capacity;
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
    return this.#d.locked((t) => {
      const found = t.findSlot(key);
      let free = found.free;
      if (found.slot >= 0) {
        if (t.isSlotAlive(found.slot)) return false;
        t.remove(found.slot, 'removed-dead');
        free = found.slot;
      }
      if (free < 0) free = this.#d.collectDead(t)[0] ?? -1;
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
      this.#d.own.record(name, free, generation, key, o.pid === undefined);
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
    return this.#d.locked((t) => {
      const { slot } = t.findSlot(key);
      if (slot < 0 || (pid !== undefined && t.pidOf(slot) !== pid)) return false;
      t.remove(slot, 'unregistered');
      this.#d.own.forget(name);
      return true;
    });
  }

  /** A copy of the live entry `name`, or undefined. An entry of a dead process is removed on the way. */
  find(name: string): ServiceEntry | undefined {
    validateName(name, 'service name');
    const key = nameKey(name);
    return this.#d.locked((t) => {
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
    return this.#d.locked((t) => this.#d.liveEntries(t, key));
  }

  /** Every live entry, sorted by name. */
  list(): ServiceEntry[] {
    return this.#d.locked((t) => this.#d.liveEntries(t));
  }

  /** Removes the entries of dead processes; returns how many. */
  gc(): number {
    return this.#d.locked((t) => this.#d.collectDead(t).length);
  }

  /** Removes every entry (each reported to watchers as 'unregistered'). Group records are kept: epochs only grow. */
  clear(): void {
    this.#d.locked((t) => {
      for (const slot of t.liveSlots()) t.remove(slot, 'unregistered');
      this.#d.own.clear();
    });
  }

  /**
   * Stamps the caller's entry `name` with the current time, without taking the lock: cheap enough to
   * call every few milliseconds. Throws ERR_LIBIPC_NOT_FOUND when this process holds no such entry.
   */
  heartbeat(name: string): void {
    this.#d.assertOpen();
    if (this.#d.own.stamp(name, Date.now())) return;
    throw new NotFoundError(
      `process ${process.pid} holds no entry '${name}' in registry '${this.domain}' (never registered, unregistered or cleared); register it first`,
    );
  }

  /** The group's record: its epoch (0 before the first claim) and primary instance. */
  groupState(group: string): { epoch: number; primary?: string } {
    validateName(group, 'group');
    const key = nameKey(group);
    return this.#d.locked((t) => {
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
    return this.#d.locked((t) => {
      const found = t.findGroup(key);
      let index = found.index;
      const current = index < 0 ? 0 : t.groupState(index).epoch;
      if (current !== expectedEpoch) return undefined;
      if (index < 0) {
        if (found.free < 0) {
          throw new RegistryFullError(
            `registry '${this.domain}' holds ${this.#d.table.g.groupCapacity} group records, all in use; use fewer groups or recreate the domain with a larger { capacity }`,
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
    const feed = this.#d.locked((t) => new ChangeFeed(t.seq(), t.liveEntries()));
    return changes(this.#d, feed, signal);
  }

  /**
   * Whether an entry's process (its registering thread, when the entry carries a lease) is alive now: the lease
   * first — broken by the kernel the moment its holder dies — then the process identity (pid + start time).
   */
  isAlive(entry: ServiceEntry): boolean {
    const e = checkEntry(entry);
    return this.#d.locked((t) => {
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
    return waitForDeath(this.#d, checkEntry(entry), opts);
  }

  /**
   * Takes the group's host lease on this thread (creating the group record if needed): the group's members
   * watch it (watchGroupLease) to exit the moment their host dies. False when another live thread holds it.
   */
  holdGroupLease(group: string): boolean {
    validateName(group, 'group');
    const key = nameKey(group);
    return this.#d.locked((t) => {
      const found = t.findGroup(key);
      let index = found.index;
      if (index < 0) {
        if (found.free < 0) {
          throw new RegistryFullError(`registry '${this.domain}' holds ${this.#d.table.g.groupCapacity} group records, all in use; use fewer groups`);
        }
        index = found.free;
        t.createGroup(index, group);
      }
      return this.#d.mem.handle.leaseAcquire(t.groupLeaseOffset(index));
    });
  }

  /** Releases the group's host lease if this thread holds it (its watchers see 'released'). */
  releaseGroupLease(group: string): boolean {
    validateName(group, 'group');
    const key = nameKey(group);
    return this.#d.locked((t) => {
      const { index } = t.findGroup(key);
      return index >= 0 && this.#d.mem.handle.leaseRelease(t.groupLeaseOffset(index));
    });
  }

  /** The group's host lease now: 'held', 'released', 'owner-died', or 'free' (no host ever held it). */
  groupLeaseState(group: string): LeaseState {
    validateName(group, 'group');
    const key = nameKey(group);
    return this.#d.locked((t) => {
      const { index } = t.findGroup(key);
      return index < 0 ? 'free' : t.groupLeaseState(index);
    });
  }

  /** Resolves when the group's host lease is no longer held: 'owner-died' (the host died) or 'released'. */
  async watchGroupLease(group: string, opts: LeaseWatchOptions = {}): Promise<'released' | 'owner-died'> {
    validateName(group, 'group');
    const key = nameKey(group);
    const at = this.#d.locked((t) => {
      const { index } = t.findGroup(key);
      return index < 0 ? undefined : t.groupLeaseOffset(index);
    });
    if (at === undefined) return 'released';
    return Lease.watch(this.#d.mem, at, opts);
  }

  /**
   * Resolves with the entry as soon as `name` is registered (at once if it is), or undefined after
   * `timeoutMs`. Rejects with the signal's reason on abort, ERR_LIBIPC_CLOSED on close().
   */
  async waitFor(name: string, opts: WaitForOptions = {}): Promise<ServiceEntry | undefined> {
    validateName(name, 'service name');
    return waitFor(this.#d, name, opts, (n) => this.find(n));
  }

  /**
   * Detaches. The last process to close a registry with no live entries removes its segment, marking it
   * retired under the lock first so that a process opening it at that moment creates a new one.
   */
  close(): void {
    this.#d.close();
  }

  get isClosed(): boolean {
    return this.#d.closed;
  }
}

