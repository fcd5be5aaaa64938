import { type UsageSample, cpuPercent, sampleUsage } from '@libipc/process';

export interface Usage {
  /** Percent of one core over the last second (over the process's life at the first look). */
  cpu: number | null;
  rssBytes: number | null;
}

export interface SamplerOptions {
  intervalMs?: number;
  /** Sampling stops when nobody asked for this long. */
  idleMs?: number;
  read?: (pid: number) => UsageSample | undefined;
  /** Wall-clock ms since the epoch when a process started (for the first look's lifetime average). */
  startedAt?: (pid: number) => number | undefined;
}

/** CPU % from two samples when there are two, else the lifetime average (pure). */
export function usageOf(prev: UsageSample | undefined, cur: UsageSample | undefined, startedAtMs: number | undefined, nowMs: number): Usage {
  if (!cur) return { cpu: null, rssBytes: null };
  const recent = cpuPercent(prev, cur);
  if (recent !== undefined) return { cpu: recent, rssBytes: cur.rssBytes };
  const life = startedAtMs === undefined ? 0 : nowMs - startedAtMs;
  return { cpu: life > 0 ? (100 * cur.cpuMs) / life : null, rssBytes: cur.rssBytes };
}

/**
 * CPU and memory of the daemon's processes from /proc, sampled once a second only while someone looks
 * (`libipc ps`, the dashboard): each look keeps it going for `idleMs`, then the timer stops.
 */
export class UsageSampler {
  private readonly intervalMs: number;
  private readonly idleMs: number;
  private readonly read: (pid: number) => UsageSample | undefined;
  private readonly startedAt: (pid: number) => number | undefined;
  private prev = new Map<number, UsageSample>();
  private last = new Map<number, UsageSample>();
  private timer: NodeJS.Timeout | undefined;
  private lookedAt = 0;

  constructor(
    private readonly pids: () => number[],
    o: SamplerOptions = {},
  ) {
    this.intervalMs = o.intervalMs ?? 1000;
    this.idleMs = o.idleMs ?? 10_000;
    this.read = o.read ?? sampleUsage;
    this.startedAt = o.startedAt ?? (() => undefined);
  }

  get sampling(): boolean {
    return this.timer !== undefined;
  }

  /** Usage of each pid now; keeps the sampler running for a while. */
  look(pids: readonly number[]): Map<number, Usage> {
    this.lookedAt = Date.now();
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
    const out = new Map<number, Usage>();
    for (const pid of pids) {
      let cur = this.last.get(pid);
      let prev = this.prev.get(pid);
      if (!cur) {
        cur = this.read(pid);
        prev = undefined;
        if (cur) this.last.set(pid, cur);
      }
      out.set(pid, usageOf(prev, cur, this.startedAt(pid), Date.now()));
    }
    return out;
  }

  private tick(): void {
    if (Date.now() - this.lookedAt > this.idleMs) {
      this.stop();
      return;
    }
    const next = new Map<number, UsageSample>();
    for (const pid of this.pids()) {
      const s = this.read(pid);
      if (s) next.set(pid, s);
    }
    this.prev = this.last;
    this.last = next;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.prev.clear();
    this.last.clear();
  }
}
