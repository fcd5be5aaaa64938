import type { ServiceStatus } from '@libipc/supervisor';

/** How `libipc run` shows what happens: a live table on a terminal, plain lines otherwise. */
export interface RunView {
  /** A service's output line (timestamp-prefixed, as in its log file). */
  log(name: string, line: string): void;
  /** A lifecycle event worth a line: started, ready, exited, restarting, failed, adopted, stopped. */
  event(name: string, what: string, tone?: 'good' | 'bad' | 'warn' | 'plain'): void;
  /** The services changed: redraw (the table; plain output ignores it). */
  update(statuses: () => ServiceStatus[], footer: string): void;
  close(): void;
}

/** HH:MM:SS of a log line's ISO timestamp, or of now. */
export function clock(iso?: string): string {
  const d = iso && /^\d{4}-\d\d-\d\dT/.test(iso) ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? new Date().toTimeString().slice(0, 8) : d.toTimeString().slice(0, 8);
}

/** A log line without its ISO timestamp, and that timestamp. */
export function splitLogLine(line: string): { time: string; text: string } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ?(.*)$/s.exec(line);
  return m ? { time: clock(m[1]), text: m[2]! } : { time: clock(), text: line };
}
