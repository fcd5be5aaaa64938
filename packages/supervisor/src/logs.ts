import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { RotatingLogFile } from './log-file.js';

export type LogStream = 'stdout' | 'stderr';

/** Where a service's logs live in its log folder. */
export function logPaths(dir: string, name: string): { file: Record<LogStream, string>; fifo: Record<LogStream, string>; fifoDir: string } {
  const fifoDir = join(dir, '.pipes');
  return {
    file: { stdout: join(dir, `${name}.stdout.log`), stderr: join(dir, `${name}.stderr.log`) },
    fifo: { stdout: join(fifoDir, `${name}.stdout`), stderr: join(fifoDir, `${name}.stderr`) },
    fifoDir,
  };
}

/** The last `n` lines of a file (reads backwards from the end, a block at a time). */
function tailOf(path: string, n: number): string[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const chunks: Buffer[] = [];
    let pos = size;
    let newlines = 0;
    const block = Buffer.alloc(64 * 1024);
    while (pos > 0 && newlines <= n) {
      const len = Math.min(block.length, pos);
      pos -= len;
      const got = readSync(fd, block, 0, len, pos);
      const part = Buffer.from(block.subarray(0, got));
      for (const b of part) if (b === 10) newlines++;
      chunks.unshift(part);
    }
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return n === 0 ? [] : lines.slice(-n);
  } finally {
    closeSync(fd);
  }
}

/** The last `n` lines of a rotated log (current file first, then .1, .2, …). */
export function lastLines(path: string, keep: number, n: number): string[] {
  let out: string[] = [];
  for (const f of RotatingLogFile.files(path, keep)) {
    if (out.length >= n) break;
    out = [...tailOf(f, n - out.length), ...out];
  }
  return out;
}

/** Merges timestamp-prefixed lines of two streams in time order (stable), keeping the last `n`. */
export function mergeByTime(a: string[], b: string[], n: number): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]!.slice(0, 24) <= b[j]!.slice(0, 24))) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return n === 0 ? [] : out.slice(-n);
}

/** Live lines: `subscribe` calls `onLine` for each new line and `onEnd` when no more will come; returns an unsubscribe. */
export type LineSource = (onLine: (line: string) => void, onEnd: () => void) => () => void;

/**
 * What `manager.logs()` returns: `await` it for the last lines (string[]), or iterate it with `for await`
 * for the same lines and then, with `follow`, each new line as it is written, until `close()`, a `break`,
 * or the service's logs close.
 */
export class LogReader implements AsyncIterable<string>, PromiseLike<string[]> {
  private closers = new Set<() => void>();

  constructor(
    private readonly snapshot: () => string[],
    private readonly live: LineSource | undefined,
  ) {}

  then<A = string[], B = never>(onFulfilled?: ((v: string[]) => A | PromiseLike<A>) | null, onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return new Promise<string[]>((resolve) => resolve(this.snapshot())).then(onFulfilled, onRejected);
  }

  /** Ends every iteration in progress. */
  close(): void {
    for (const c of [...this.closers]) c();
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    const queue: string[] = [];
    let ended = this.live === undefined;
    let wake: (() => void) | undefined;
    let unsubscribe: (() => void) | undefined;
    let started = false;
    const finish = () => {
      ended = true;
      unsubscribe?.();
      unsubscribe = undefined;
      this.closers.delete(finish);
      wake?.();
    };
    const start = () => {
      started = true;
      // Subscribed and read in one synchronous step: no line can be written in between, none is seen twice.
      if (this.live) {
        unsubscribe = this.live(
          (line) => {
            queue.push(line);
            wake?.();
          },
          finish,
        );
        this.closers.add(finish);
      }
      queue.unshift(...this.snapshot());
    };
    return {
      next: async (): Promise<IteratorResult<string>> => {
        if (!started) start();
        for (;;) {
          if (queue.length > 0) return { value: queue.shift()!, done: false };
          if (ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
      return: async (): Promise<IteratorResult<string>> => {
        finish();
        return { value: undefined, done: true };
      },
    };
  }
}
