import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

export interface KeepaliveHooks {
  /** etcd renewed the lease on the keepalive sent at `sentAt` (performance.now() ms, a monotonic clock). */
  renewed(sentAt: number): void;
  /** The stream broke, or an answer is late: etcd may be unreachable (keepalives go on, on a new stream). */
  failed(err: unknown): void;
  /** etcd answered that the lease does not exist any more. */
  lost(err: unknown): void;
}

/**
 * Keeps one lease alive: a keepalive every TTL/3 on one gRPC stream (as etcd's Go client does), a new stream
 * when it breaks or an answer is a full interval late. Unlike etcd3's own loop it knows WHEN each renewed
 * keepalive was sent (answers on a stream come in order), which is what bounds the lease's life on etcd's side.
 */
export class Keepalive {
  private stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private backoff = 100;
  private closed = false;
  private readonly intervalMs: number;

  constructor(
    private readonly client: Etcd3,
    private readonly leaseId: string,
    ttlS: number,
    private readonly hooks: KeepaliveHooks,
  ) {
    this.intervalMs = (ttlS * 1000) / 3;
  }

  start(): void {
    void this.open();
  }

  close(): void {
    this.closed = true;
    this.teardown();
    clearTimeout(this.retry);
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    let stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
    try {
      stream = await this.client.leaseClient.leaseKeepAlive();
    } catch (err) {
      this.broken(err);
      return;
    }
    if (this.closed) {
      stream.on('error', () => undefined);
      stream.end();
      return;
    }
    this.stream = stream;
    /** Send times of the keepalives not answered yet, oldest first. */
    const sent: number[] = [];
    const fire = () => {
      if (stream !== this.stream) return;
      if (sent.length > 0 && performance.now() - sent[0]! > this.intervalMs) {
        this.broken(new Error(`etcd did not answer a lease keepalive within ${Math.round(this.intervalMs)} ms`));
        return;
      }
      sent.push(performance.now());
      stream.write({ ID: this.leaseId });
    };
    stream.on('data', (res: ILeaseKeepAliveResponse) => {
      if (stream !== this.stream) return;
      const at = sent.shift();
      if (res.TTL === '0' || Number(res.TTL) <= 0) {
        this.teardown();
        this.closed = true;
        this.hooks.lost(new Error(`etcd says lease ${this.leaseId} has expired`));
        return;
      }
      this.backoff = 100;
      if (at !== undefined) this.hooks.renewed(at);
    });
    stream.on('error', (err: unknown) => stream === this.stream && this.broken(err));
    stream.on('end', () => stream === this.stream && this.broken(new Error('etcd ended the lease keepalive stream')));
    this.timer = setInterval(fire, this.intervalMs);
    fire();
  }

  private teardown(): void {
    clearInterval(this.timer);
    const s = this.stream;
    this.stream = undefined;
    if (s) {
      s.on('error', () => undefined);
      s.end();
    }
  }

  /** The stream failed: say so, and open a new one after a short backoff (100 ms doubling to 1 s). */
  private broken(err: unknown): void {
    this.teardown();
    if (this.closed) return;
    this.hooks.failed(err);
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.open(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 1000);
  }
}
