import type { HistoryEvent, HistorySink } from './history.js';

export interface SinkTrouble {
  sink: number;
  error?: unknown;
  /** Events dropped since the last report, and in all. */
  dropped?: number;
  totalDropped?: number;
}

/**
 * One sink's bounded queue: events are handed over one at a time off the caller's path; a full queue drops
 * the newest event and counts it; a write that takes longer than `writeTimeoutMs` is abandoned (the sink
 * may still finish it) so one hung call cannot stall the queue forever.
 */
export class SinkQueue {
  private readonly queue: HistoryEvent[] = [];
  private running = false;
  private droppedSinceReport = 0;
  private reportScheduled = false;
  private idleWaiters: Array<() => void> = [];
  totalDropped = 0;
  errors = 0;

  constructor(
    private readonly index: number,
    private readonly sink: HistorySink | ((e: HistoryEvent) => void | Promise<void>),
    private readonly capacity: number,
    private readonly writeTimeoutMs: number,
    private readonly onTrouble: (kind: 'error' | 'drop', t: SinkTrouble) => void,
  ) {}

  push(event: HistoryEvent): void {
    if (this.queue.length >= this.capacity) {
      this.totalDropped++;
      this.droppedSinceReport++;
      if (!this.reportScheduled) {
        this.reportScheduled = true;
        setImmediate(() => {
          this.reportScheduled = false;
          const dropped = this.droppedSinceReport;
          this.droppedSinceReport = 0;
          this.onTrouble('drop', { sink: this.index, dropped, totalDropped: this.totalDropped });
        });
      }
      return;
    }
    this.queue.push(event);
    if (!this.running) {
      this.running = true;
      // Never inside the caller's stack: a sink that throws synchronously cannot reach the manager.
      setImmediate(() => void this.drain());
    }
  }

  get length(): number {
    return this.queue.length;
  }

  /** Resolves when the queue is empty (or after timeoutMs). */
  idle(timeoutMs: number): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const event = this.queue.shift()!;
      try {
        await this.deliver(event);
      } catch (error) {
        this.errors++;
        this.onTrouble('error', { sink: this.index, error });
      }
    }
    this.running = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private deliver(event: HistoryEvent): Promise<void> {
    const s = this.sink;
    const result = typeof s === 'function' ? s(event) : s.write(event);
    if (!result || typeof (result as Promise<void>).then !== 'function') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`history sink ${this.index} did not finish a write within ${this.writeTimeoutMs} ms; moving on`)),
        this.writeTimeoutMs,
      );
      timer.unref();
      (result as Promise<void>).then(
        () => (clearTimeout(timer), resolve()),
        (err: unknown) => (clearTimeout(timer), reject(err)),
      );
    });
  }
}
