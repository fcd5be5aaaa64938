import type { Io } from '../io.js';
import type { Colors } from '../output.js';
import { type RunView, clock, splitLogLine } from './view.js';

/** Plain lines for a pipe or a file: `12:00:01 api      | output` and `12:00:01 api      ready (pid 123)`. */
export class PlainView implements RunView {
  private width = 8;

  constructor(
    private readonly io: Io,
    private readonly c: Colors,
    names: string[],
  ) {
    this.width = Math.min(24, Math.max(8, ...names.map((n) => n.length)));
  }

  log(name: string, line: string): void {
    const { time, text } = splitLogLine(line);
    this.io.stdout.write(`${this.c.dim(time)} ${name.padEnd(this.width)} | ${text}\n`);
  }

  event(name: string, what: string, tone: 'good' | 'bad' | 'warn' | 'plain' = 'plain'): void {
    const paint = tone === 'good' ? this.c.green : tone === 'bad' ? this.c.red : tone === 'warn' ? this.c.yellow : (s: string) => s;
    this.io.stdout.write(`${this.c.dim(clock())} ${name.padEnd(this.width)} ${paint(what)}\n`);
  }

  update(): void {}

  close(): void {}
}
