import type { DaemonSpec, Launcher } from './types.js';

/**
 * How long until a node that renews nothing more must fence, in ms (≤ 0: now). etcd renews a lease to its TTL
 * when it PROCESSES a keepalive, which is after we sent it: so the lease cannot expire before
 * `lastSentAt + ttl`, and the node stops its daemons `marginMs` before that.
 */
export function fenceDelay(now: number, lastSentAt: number, ttlMs: number, marginMs: number): number {
  return lastSentAt + ttlMs - marginMs - now;
}

/** Which daemons a fenced node stops, and which keep running (their launcher opted in: safe to duplicate). */
export function splitFenced(daemons: DaemonSpec[], launchers: ReadonlyMap<string, Launcher>): { stop: DaemonSpec[]; keep: DaemonSpec[] } {
  const stop: DaemonSpec[] = [];
  const keep: DaemonSpec[] = [];
  for (const d of daemons) (launchers.get(d.launcher)?.keepRunningWhenFenced === true ? keep : stop).push(d);
  return { stop, keep };
}

export interface FencingHooks {
  /** The lease may expire on etcd's side within the margin: stop the daemons now. */
  fence(): void;
}

/**
 * The node's self-fencing clock: every renewed keepalive moves the deadline (send time + TTL − margin); if it
 * passes with no renewal, the node fences once, and stays fenced until it has re-joined (reset()).
 */
export class Fencing {
  private lastSentAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private fencedNow = false;
  private closed = false;

  constructor(
    private readonly ttlMs: number,
    private readonly marginMs: number,
    private readonly hooks: FencingHooks,
  ) {}

  get fenced(): boolean {
    return this.fencedNow;
  }

  /** A keepalive sent at `sentAt` (performance.now()) was answered: the lease lives at least until sentAt + TTL. */
  renewed(sentAt: number): void {
    if (sentAt <= this.lastSentAt) return;
    this.lastSentAt = sentAt;
    if (!this.fencedNow) this.arm();
  }

  /** The node has re-joined (its lease checked or a new one granted): fencing starts over. */
  reset(): void {
    this.fencedNow = false;
    this.arm();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.closed || this.lastSentAt === -Infinity) return;
    const delay = fenceDelay(performance.now(), this.lastSentAt, this.ttlMs, this.marginMs);
    if (delay <= 0) {
      this.fire();
      return;
    }
    this.timer = setTimeout(() => this.fire(), delay).unref();
  }

  private fire(): void {
    if (this.closed || this.fencedNow) return;
    // A timer can fire late (a loaded machine): check against the clock, not against the timer.
    const delay = fenceDelay(performance.now(), this.lastSentAt, this.ttlMs, this.marginMs);
    if (delay > 0) {
      this.timer = setTimeout(() => this.fire(), delay).unref();
      return;
    }
    this.fencedNow = true;
    this.hooks.fence();
  }
}
