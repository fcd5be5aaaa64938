import type { ServiceEntry, ServiceRegistry } from '@libipc/registry';
import { watchExit } from '@libipc/shm';

export interface BridgeTarget {
  register(name: string): Promise<void>;
  unregister(name: string): Promise<void>;
}

/**
 * Mirrors one machine's @libipc/registry domain into the cluster: every live entry of the domain becomes a
 * registration of this node, and goes when it is unregistered or its process dies (seen at once through a
 * pidfd: the registry itself only notices a dead entry when someone reads it). Any change (or etcd coming
 * back) makes it compare the domain's live names with what it mirrored, and fix the difference, so a change
 * missed while etcd was away is caught up, never lost.
 */
export class RegistryBridge {
  private readonly mirrored = new Set<string>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private again = false;
  private retry: NodeJS.Timeout | undefined;
  /** Processes (pid:startTime) whose exit we watch. */
  private readonly watched = new Set<string>();

  constructor(
    private readonly registry: ServiceRegistry,
    private readonly target: BridgeTarget,
  ) {}

  /** Starts mirroring: watch first, then the first sync (the registry's rule: watch(), then list()). */
  start(): void {
    const changes = this.registry.watch({ signal: this.abort.signal });
    this.resync();
    void (async () => {
      try {
        for await (const _change of changes) this.resync();
      } catch {
        // the registry was closed, or the watch aborted: nothing more to mirror
      }
    })();
  }

  /** Brings the cluster in line with the domain (coalesced: one sync at a time, one more if asked meanwhile). */
  resync(): void {
    if (this.abort.signal.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.sync().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.resync();
      }
    });
  }

  private async sync(): Promise<void> {
    let live: Set<string>;
    try {
      const entries = this.registry.list();
      live = new Set(entries.map((e) => e.name));
      for (const e of entries) this.watchProcess(e);
    } catch {
      // The registry lock is held by a stopped process, or the registry was closed: try again in a second.
      if (!this.abort.signal.aborted) this.retry = setTimeout(() => this.resync(), 1000).unref();
      return;
    }
    for (const name of live) {
      if (this.abort.signal.aborted) return;
      if (this.mirrored.has(name)) continue;
      // A failure (etcd away) leaves it unmirrored: the node resyncs when etcd is back.
      await this.target.register(name).then(() => this.mirrored.add(name), () => undefined);
    }
    for (const name of [...this.mirrored]) {
      if (this.abort.signal.aborted) return;
      if (live.has(name)) continue;
      await this.target.unregister(name).then(() => this.mirrored.delete(name), () => undefined);
    }
  }

  /** A registered process's death removes its entry only when the registry is read: read it then. */
  private watchProcess(e: ServiceEntry): void {
    const id = `${e.pid}:${e.startTime}`;
    if (e.pid === process.pid || this.watched.has(id)) return;
    this.watched.add(id);
    watchExit(e.pid, e.startTime, { signal: this.abort.signal, ref: false }).then(
      () => {
        this.watched.delete(id);
        this.resync();
      },
      () => this.watched.delete(id),
    );
  }

  close(): void {
    this.abort.abort();
    clearTimeout(this.retry);
  }
}
