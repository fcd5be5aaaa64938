import { resolve as resolvePath } from 'node:path';
import { ExistsError } from '@libipc/shm';
import { JsonFileStore } from './json-store.js';
import type { Store, StoredInstance } from './store.js';
import type { Unit } from './unit.js';

// Stores held by a live Manager of this process (another process's hold is in the store's owner record).
const heldStores = new WeakSet<Store>();
const heldPaths = new Set<string>();

export function isStore(v: unknown): v is Store {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return ['load', 'putService', 'deleteService', 'putInstance', 'deleteInstance', 'setOwner', 'close'].every((k) => typeof s[k] === 'function');
}

/** The manager's store (if any): held by one Manager of this process at a time; every write goes through here. */
export class Persistence {
  readonly store: Store | undefined;
  private readonly owns: boolean;
  private readonly key: string | undefined;

  /** Throws ERR_LIBIPC_EXISTS when another Manager of this process holds the store. */
  constructor(
    store: Store | string | undefined,
    private readonly warn: (err: unknown) => void,
  ) {
    if (typeof store === 'string') {
      this.key = resolvePath(store);
      if (heldPaths.has(this.key)) throw new ExistsError(`store ${this.key} is held by another Manager of this process; shut it down first`);
      this.store = new JsonFileStore(this.key);
      this.owns = true;
    } else {
      this.store = store;
      this.owns = false;
      if (this.store && heldStores.has(this.store)) throw new ExistsError('this store is held by another Manager of this process; shut it down first');
    }
  }

  /** Marks the store held by this process (once it was taken over). */
  hold(): void {
    if (this.key) heldPaths.add(this.key);
    else if (this.store) heldStores.add(this.store);
  }

  /** The takeover failed: close a store we opened. */
  abandon(): void {
    if (this.owns) this.store?.close();
  }

  /** Writes `fn` to the store; a failure is a warning, never a failed call. */
  safe(fn: (s: Store) => void): void {
    if (!this.store) return;
    try {
      fn(this.store);
    } catch (err) {
      this.warn(err);
    }
  }

  /** The unit's record: desired state, state, counters, process identity. */
  persist(u: Unit): void {
    if (!this.store || u.removing) return;
    const rec: StoredInstance = {
      name: u.name,
      service: u.service,
      desired: u.savedDesired,
      state: u.state,
      restarts: u.restarts,
      contractRestarts: u.contractRestarts,
      updatedAt: Date.now(),
    };
    if (u.pid !== undefined && u.startTime !== undefined) {
      rec.pid = u.pid;
      rec.startTime = u.startTime.toString();
    }
    if (u.reason !== undefined) rec.reason = u.reason;
    this.safe((s) => s.putInstance(rec));
  }

  /** At shutdown: no owner any more, everything on disk, the store closed if we opened it, no longer held. */
  release(): void {
    if (!this.store) return;
    this.safe((s) => {
      s.setOwner(undefined);
      s.flush?.();
    });
    if (this.owns) this.safe((s) => s.close());
    if (this.key) heldPaths.delete(this.key);
    else heldStores.delete(this.store);
  }
}
