import { writeSync } from 'node:fs';

// The daemon's own log (daemon.log, its stdout): it must never end the daemon — a full disk drops lines instead
// of raising an unhandled 'error' — and a warning repeated many times a second (a full disk makes every store and
// log write fail) is written once per window with how many more there were.

/** How long the same line is held back after it was written. */
export const REPEAT_WINDOW_MS = 10_000;

export interface RepeatState {
  /** Per line: when it was last written, and how many times it came since. */
  seen: Map<string, { at: number; held: number }>;
}

/**
 * Decides what to write for `line` at `now`: the line (with how many like it were held back), or nothing (held
 * back). Pure, for the table test.
 */
export function collapse(state: RepeatState, line: string, now: number, windowMs = REPEAT_WINDOW_MS): string | undefined {
  const last = state.seen.get(line);
  if (last && now - last.at < windowMs) {
    last.held++;
    return undefined;
  }
  state.seen.set(line, { at: now, held: 0 });
  if (state.seen.size > 256) {
    // Forget lines whose window is over: a daemon that runs for months keeps no history of every line.
    for (const [k, v] of state.seen) if (now - v.at >= windowMs) state.seen.delete(k);
  }
  return last && last.held > 0 ? `${line} (and ${last.held} more like it in the last ${Math.round((now - last.at) / 1000)} s)` : line;
}

/**
 * A log function over `stream` that never throws and never lets a write error end the process. Its file descriptor
 * is written directly when it has one: a stream that failed once (ENOSPC) stays destroyed, a descriptor writes
 * again as soon as there is room.
 */
export function daemonLogger(stream: NodeJS.WritableStream, now: () => Date = () => new Date()): (line: string) => void {
  const state: RepeatState = { seen: new Map() };
  let dropped = 0;
  const fd = (stream as { fd?: unknown }).fd;
  const write = typeof fd === 'number' ? (text: string) => void writeSync(fd, text) : (text: string) => void stream.write(text);
  stream.on('error', () => {
    dropped++;
  });
  return (line) => {
    const at = now();
    const out = collapse(state, line, at.getTime());
    if (out === undefined) return;
    const lost = dropped > 0 ? `${at.toISOString()} (${dropped} log line(s) could not be written)\n` : '';
    dropped = 0;
    try {
      write(`${lost}${at.toISOString()} ${out}\n`);
    } catch {
      dropped++;
    }
  };
}
