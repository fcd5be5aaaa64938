import type { EventEmitter } from 'node:events';
import type { HistoryEvent, HistoryEventType, HistorySink } from './history.js';
import { SinkQueue } from './history-queue.js';
import type { Unit } from './unit.js';

export type SinkLike = HistorySink | ((event: HistoryEvent) => void | Promise<void>);

/** A history sink as given in ManagerOptions.sinks, or undefined when it is not one. */
export function asSink(v: unknown): SinkLike | undefined {
  if (typeof v === 'function') return v as SinkLike;
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.write === 'function') return v as HistorySink;
  // Sinks written against other supervisors' vocabulary.
  for (const alias of ['record', 'send', 'append', 'log', 'handle', 'onEvent']) {
    const fn = o[alias];
    if (typeof fn === 'function') return { write: (e: HistoryEvent) => (fn as (e: HistoryEvent) => void | Promise<void>).call(v, e) };
  }
  return undefined;
}

/** Everything the manager tells the world: its events, the history (also to every sink), warnings. */
export class Announcer {
  /** Events raised inside the Manager's constructor (adoptions), replayed later so listeners added after `new` see them. */
  private deferred: Array<[string, unknown[]]> | undefined = [];
  private readonly queues: SinkQueue[];

  constructor(
    private readonly emitter: EventEmitter,
    sinks: SinkLike[],
    capacity: number,
    sinkTimeoutMs: number,
  ) {
    this.queues = sinks.map(
      (s, i) =>
        new SinkQueue(i, s, capacity, sinkTimeoutMs, (kind, t) => {
          if (kind === 'error') this.emit('sink-error', { sink: t.sink, error: t.error });
          else this.emit('history-dropped', { sink: t.sink, dropped: t.dropped, totalDropped: t.totalDropped });
        }),
    );
  }

  /** Still inside the Manager's constructor: events wait for replay(). */
  get deferring(): boolean {
    return this.deferred !== undefined;
  }

  /** Emits what was deferred; from now on events go out at once. */
  replay(): void {
    const deferred = this.deferred ?? [];
    this.deferred = undefined;
    for (const [event, args] of deferred) this.emit(event, ...args);
  }

  /** A listener that throws must not break the manager's bookkeeping: its error surfaces on the next tick. */
  emit(event: string, ...args: unknown[]): void {
    if (this.deferred) {
      this.deferred.push([event, args]);
      return;
    }
    try {
      this.emitter.emit(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  warn(err: unknown): void {
    this.emit('warning', err instanceof Error ? err : new Error(String(err)));
  }

  /** A lifecycle event of `u`: to every sink, as its own event and as 'history'. */
  history(u: Unit, type: HistoryEventType, extra: Partial<HistoryEvent>): void {
    const e: HistoryEvent = { type, name: u.name, service: u.service, timestamp: new Date().toISOString() };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) (e as unknown as Record<string, unknown>)[k] = v;
    for (const q of this.queues) q.push(e);
    this.emit(type, e);
    this.emit('history', e);
  }

  /** Resolves once every sink wrote what it was given (or after `ms`). */
  async idle(ms: number): Promise<void> {
    await Promise.all(this.queues.map((q) => q.idle(ms)));
  }
}
