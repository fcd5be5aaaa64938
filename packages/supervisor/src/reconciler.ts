/**
 * Runs `tick` every interval (a timer that does not keep the process alive), never two ticks at once:
 * a tick that is still running when the next is due makes that one skip.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  intervalMs: number | undefined;

  constructor(private readonly tick: () => void | Promise<void>) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(intervalMs: number): void {
    this.stop();
    this.intervalMs = intervalMs;
    this.timer = setInterval(() => void this.runOnce(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async runOnce(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.tick();
    } finally {
      this.busy = false;
    }
  }
}
