import type { ServiceRegistry } from '@libipc/registry';

export interface BridgeTarget {
  register(name: string): Promise<void>;
  unregister(name: string): Promise<void>;
}

/**
 * Mirrors one machine's @libipc/registry domain into the cluster: every live entry of the domain becomes a
 * registration of this node, and goes when it is unregistered or its process dies. Any change (or etcd
 * coming back) makes it compare the domain's live names with what it mirrored, and fix the difference, so
 * a change missed while etcd was away is caught up, never lost.
 */
export class RegistryBridge {
  private readonly mirrored = new Set<string>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private again = false;
  private retry: NodeJS.Timeout | undefined;

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
      live = new Set(this.registry.list().map((e) => e.name));
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

  close(): void {
    this.abort.abort();
    clearTimeout(this.retry);
  }
}
