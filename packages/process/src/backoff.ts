/** Exponential backoff: initialMs, then × factor each time, capped at maxMs, spread by ± jitter. */
export interface BackoffSpec {
  initialMs: number;
  factor: number;
  maxMs: number;
  /** 0..1: each delay is scaled by a random factor in [1 - jitter, 1 + jitter] (then capped at maxMs). */
  jitter?: number;
}

export class Backoff {
  private attempt = 0;
  constructor(
    private readonly spec: BackoffSpec,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next restart; each call grows the following one. */
  next(): number {
    const { initialMs, factor, maxMs, jitter = 0 } = this.spec;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    const spread = 1 + jitter * (2 * this.random() - 1);
    return Math.round(Math.min(maxMs, Math.max(0, base * spread)));
  }

  /** Back to initialMs (the process stayed up long enough). */
  reset(): void {
    this.attempt = 0;
  }
}
