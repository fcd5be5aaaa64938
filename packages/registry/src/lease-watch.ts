import { Lease, type SharedMemory } from '@libipc/shm';

/** A live entry's lease to watch: where it is and whose tenure it is. */
export interface LeasedSlot {
  offset: number;
  pid: number;
  tid: number;
}

/**
 * The leases of a registry's live entries, watched at once, so a watcher learns of a death the moment the kernel
 * breaks a lease instead of when someone next looks at /proc. `broken` resolves at the first lease that breaks.
 */
export class LeaseWatchSet {
  readonly #mem: SharedMemory;
  readonly #watches = new Map<string, AbortController>();
  #notify: (() => void) | undefined;
  #broken = false;

  constructor(mem: SharedMemory) {
    this.#mem = mem;
  }

  /** Watches exactly these leases from now on (new ones started, gone ones stopped). */
  sync(leases: LeasedSlot[]): void {
    const keep = new Set<string>();
    for (const l of leases) {
      const key = `${l.offset}:${l.pid}:${l.tid}`;
      keep.add(key);
      if (this.#watches.has(key)) continue;
      const stop = new AbortController();
      this.#watches.set(key, stop);
      Lease.watch(this.#mem, l.offset, { holder: { pid: l.pid, tid: l.tid }, signal: stop.signal, ref: false }).then(
        (outcome) => {
          this.#watches.delete(key);
          if (outcome === 'owner-died') this.#fire();
        },
        () => this.#watches.delete(key), // stopped, or the segment was closed
      );
    }
    for (const [key, stop] of this.#watches) {
      if (!keep.has(key)) {
        stop.abort();
        this.#watches.delete(key);
      }
    }
  }

  /** Resolves when a watched lease's holder died (at once if one did since the last call). */
  broken(): Promise<void> {
    if (this.#broken) {
      this.#broken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#notify = () => {
        this.#broken = false;
        resolve();
      };
    });
  }

  close(): void {
    for (const stop of this.#watches.values()) stop.abort();
    this.#watches.clear();
  }

  #fire(): void {
    this.#broken = true;
    const notify = this.#notify;
    this.#notify = undefined;
    notify?.();
  }
}
