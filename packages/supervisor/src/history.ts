import { readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidArgumentError, describeValue } from '@libipc/shm';
import { makeDir } from './log-file.js';

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

  /** The last `limit` (default 100) events, of one instance or all, newest first (as SqliteHistorySink.events). */
  events(opts: { name?: string; limit?: number } = {}): HistoryEvent[] {
    const limit = opts?.limit ?? 100;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: HistoryEvent[] = [];
    const lines = text.split('\n');
    for (let i = lines.length - 1; i >= 0 && out.length < limit; i--) {
      if (lines[i] === '') continue;
      let e: HistoryEvent;
      try {
        e = JSON.parse(lines[i]!) as HistoryEvent;
      } catch {
        continue; // a line cut by a crash mid-write
      }
      if (opts?.name === undefined || e.name === opts.name) out.push(e);
    }
    return out;
  }

  close(): void {}
}
