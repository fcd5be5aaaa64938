import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';

/** `NODE_DEBUG=libipc-cluster`: each etcd failure, probe and re-join step, on stderr. */
export const trace = debuglog('libipc-cluster');

export interface AvailabilityHooks {
  /** One cheap call that succeeds only if etcd answers. */
  probe(): Promise<void>;
  /** Everything to do once etcd answers again (re-join, resume watches, stand for election). */
  reconcile(): Promise<void>;
  down(err: unknown): void;
  restored(): void;
}

/**
 * Whether this node can reach etcd. The first failure of any call, keepalive or watch makes it unavailable
 * (operations then fail at once, the address book keeps serving); it then probes etcd with backoff (100 ms
 * doubling to 1 s) and, when etcd answers, reconciles and becomes available again, unless something else
 * failed while it reconciled, in which case it goes round again.
 */
export class Availability {
  private up = true;
  private probing = false;
  private checking = false;
  private failures = 0;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(private readonly hooks: AvailabilityHooks) {}

  get available(): boolean {
    return this.up && !this.closed;
  }

  /**
   * Something looks wrong but may not be (a keepalive answered late, e.g. on a loaded machine): probe once,
   * and only if etcd does not answer is the node unavailable.
   */
  suspect(err: unknown): void {
    if (this.closed || !this.up || this.checking) return;
    this.checking = true;
    this.hooks.probe().then(
      () => (this.checking = false),
      () => {
        this.checking = false;
        this.lost(err);
      },
    );
  }

  lost(err: unknown): void {
    if (this.closed) return;
    this.failures++;
    trace('etcd call failed (%s): %s', this.up ? 'now unavailable' : 'already unavailable', (err as Error)?.message ?? err);
    if (this.up) {
      this.up = false;
      this.hooks.down(err);
    }
    if (!this.probing) void this.probeLoop();
  }

  private async probeLoop(): Promise<void> {
    this.probing = true;
    let delay = 100;
    try {
      while (!this.closed) {
        try {
          await sleep(delay, undefined, { signal: this.abort.signal });
        } catch {
          return;
        }
        delay = Math.min(delay * 2, 1000);
        const seen = this.failures;
        try {
          await this.hooks.probe();
          await this.hooks.reconcile();
        } catch (err) {
          trace('probe or reconcile failed (next in %d ms): %s', delay, (err as Error)?.message ?? err);
          continue;
        }
        if (this.closed) return;
        if (this.failures !== seen) continue;
        this.up = true;
        trace('available again');
        this.hooks.restored();
        return;
      }
    } finally {
      this.probing = false;
    }
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
  }
}
