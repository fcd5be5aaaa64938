import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidArgumentError, describeValue } from '@libipc/shm';
import { makeDir } from './log-file.js';
import type { RestartTrigger } from './unit.js';

export type HistoryEventType = 'start' | 'ready' | 'exit' | 'restart' | 'failed' | 'stop' | 'adopt';

/** One lifecycle event of one service, as every sink receives it. */
export interface HistoryEvent {
  type: HistoryEventType;
  /** The running name (name, or name.N for an instance). */
  name: string;
  /** The spec it belongs to (equal to name unless started with instances). */
  service: string;
  /** ISO 8601, UTC, ms. */
  timestamp: string;
  pid?: number;
  /** Process start time in clock ticks since boot (decimal string): with pid, the process's identity. */
  startTime?: string;
  /** exit: the exit code, or null when killed by a signal (or unknown for an adopted process). */
  exitCode?: number | null;
  signal?: string | null;
  /** restart: the delay before it. */
  backoffMs?: number;
  /** restarts so far (restart, failed). */
  restarts?: number;
  reason?: string;
  /** restart: what caused it. */
  trigger?: RestartTrigger;
}

/**
 * Receives lifecycle events. `write` may be synchronous or return a promise; it runs off the manager's path
 * (a bounded queue per sink), so a sink that throws, hangs or is slow never holds the manager up.
 */
export interface HistorySink {
  write(event: HistoryEvent): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** Appends each event as one JSON line to a file (created with its folder if missing). */
export class JsonlHistorySink implements HistorySink {
  readonly path: string;
  private dirReady = false;

  constructor(target: string | { path: string }) {
    const path = typeof target === 'object' && target !== null ? target.path : target;
    if (typeof path !== 'string' || path === '' || path.includes('\0')) {
      throw new InvalidArgumentError(`JsonlHistorySink path must be a non-empty string, got ${describeValue(path)}`);
    }
    this.path = path;
  }

  async write(event: HistoryEvent): Promise<void> {
    if (!this.dirReady) {
      makeDir(dirname(this.path));
      this.dirReady = true;
    }
    // O_APPEND: one write per line, so lines from several managers never interleave mid-line.
    await appendFile(this.path, `${JSON.stringify(event)}\n`, { mode: 0o600 });
  }

  /** The last `limit` (default 100) events, of one instance or all, oldest first (as SqliteHistorySink.events). */
  events(opts: { name?: string; limit?: number } = {}): HistoryEvent[] {
    const limit = opts?.limit ?? 100;
    const all = this.since(0).events.filter((e) => opts?.name === undefined || e.name === opts.name);
    return all.slice(-limit);
  }

  /**
   * The events of the whole lines written at or after byte `offset`, oldest first, and the offset to read from
   * next time (a line still being written is left for then; an offset past the end, as after a truncation, reads
   * from the start).
   */
  since(offset: number): { events: HistoryEvent[]; next: number } {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], next: 0 };
      throw err;
    }
    try {
      const size = fstatSync(fd).size;
      const from = offset > size ? 0 : Math.max(0, offset);
      const buf = Buffer.alloc(size - from);
      const got = readSync(fd, buf, 0, buf.length, from);
      const end = buf.subarray(0, got).lastIndexOf(10) + 1;
      const events: HistoryEvent[] = [];
      for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
        if (line === '') continue;
        try {
          events.push(JSON.parse(line) as HistoryEvent);
        } catch {
          // a line cut by a crash mid-write
        }
      }
      return { events, next: from + end };
    } finally {
      closeSync(fd);
    }
  }

  close(): void {}
}
