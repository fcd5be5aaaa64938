import type { ServiceStatus } from '@libipc/supervisor';
import cliSpinners from 'cli-spinners';
import { createLogUpdate } from 'log-update';
import type { Io } from '../io.js';
import { type Colors, formatDuration, renderTable, truncate } from '../output.js';
import { reasonText } from '../restart-note.js';
import { type RunView, clock, splitLogLine } from './view.js';

const BUSY = new Set(['starting', 'stopping', 'backoff']);
const FRAME_MS = 120;

/**
 * The live status table of `libipc run` on a terminal (log-update redraws it in place); service output and
 * events scroll above it. Redraws are coalesced (at most one per frame) and follow terminal resizes.
 */
export class StatusTable implements RunView {
  private readonly draw: ReturnType<typeof createLogUpdate>;
  private statuses: (() => ServiceStatus[]) | undefined;
  private footer = '';
  private pending: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout;
  private frame = 0;
  private closed = false;
  private readonly onResize = () => this.render();

  constructor(
    private readonly io: Io,
    private readonly c: Colors,
  ) {
    this.draw = createLogUpdate(io.stdout as NodeJS.WriteStream, { showCursor: false });
    // Uptimes and spinners move even when nothing happens.
    this.ticker = setInterval(() => {
      this.frame++;
      this.render();
    }, FRAME_MS * 4);
    this.ticker.unref();
    (io.stdout as NodeJS.WriteStream).on?.('resize', this.onResize);
  }

  log(name: string, line: string): void {
    const { time, text } = splitLogLine(line);
    this.above(`${this.c.dim(time)} ${this.c.cyan(name)} | ${text}`);
  }

  event(name: string, what: string, tone: 'good' | 'bad' | 'warn' | 'plain' = 'plain'): void {
    const paint = tone === 'good' ? this.c.green : tone === 'bad' ? this.c.red : tone === 'warn' ? this.c.yellow : (s: string) => s;
    this.above(`${this.c.dim(clock())} ${this.c.bold(name)} ${paint(what)}`);
  }

  update(statuses: () => ServiceStatus[], footer: string): void {
    this.statuses = statuses;
    this.footer = footer;
    if (this.pending || this.closed) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.render();
    }, FRAME_MS);
  }

  close(): void {
    if (this.closed) return;
    this.render();
    this.closed = true;
    clearInterval(this.ticker);
    if (this.pending) clearTimeout(this.pending);
    (this.io.stdout as NodeJS.WriteStream).off?.('resize', this.onResize);
    this.draw.done();
  }

  /** A line above the table: clear the table, write the line, draw the table again. */
  private above(line: string): void {
    if (this.closed) {
      this.io.stdout.write(`${line}\n`);
      return;
    }
    this.draw.clear();
    this.io.stdout.write(`${line}\n`);
    this.render();
  }

  private render(): void {
    if (this.closed || !this.statuses) return;
    this.draw(this.frameText(this.statuses()));
  }

  private frameText(all: ServiceStatus[]): string {
    const c = this.c;
    const columns = this.io.stdout.columns ?? 100;
    const rows = this.io.stdout.rows ?? 40;
    // Never taller than the terminal: a region that scrolls off cannot be redrawn in place.
    const room = Math.max(1, rows - 5);
    const shown = all.length > room ? all.slice(0, room - 1) : all;
    const spinner = cliSpinners.dots.frames[this.frame % cliSpinners.dots.frames.length]!;
    const reasonWidth = Math.max(10, columns - 70);
    const body = shown.map((s) => [
      s.name,
      stateCell(s, c, spinner),
      s.pid === undefined ? '-' : String(s.pid),
      String(s.restarts),
      s.state === 'running' ? formatDuration(s.uptimeMs) : '-',
      lastExit(s),
      truncate(reasonText(s.state, s.reason, s.lastRestart), reasonWidth),
    ]);
    let text = renderTable(['NAME', 'STATE', 'PID', 'RESTARTS', 'UPTIME', 'LAST EXIT', 'REASON'], body, c);
    if (shown.length < all.length) {
      const counts = new Map<string, number>();
      for (const s of all.slice(shown.length)) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
      text += `\n${c.dim(`… and ${all.length - shown.length} more: ${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')} ('libipc ps' lists them all)`)}`;
    }
    return `${text}\n${c.dim(this.footer)}`;
  }
}

function stateCell(s: ServiceStatus, c: Colors, spinner: string): string {
  const text = BUSY.has(s.state) ? `${spinner} ${s.state}` : s.state;
  if (s.state === 'running') return c.green(text);
  if (s.state === 'failed') return c.red(text);
  if (s.state === 'stopped' || s.state === 'exited') return c.dim(text);
  return c.yellow(text);
}

function lastExit(s: ServiceStatus): string {
  const e = s.lastExit;
  if (!e) return '-';
  return e.signal ? e.signal : e.exitCode === null ? 'unknown' : `code ${e.exitCode}`;
}
