import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * mkdir -p, one level at a time: Node's own recursive mkdirSync never returns for some paths (under /proc),
 * which would freeze the manager's event loop.
 */
export function makeDir(path: string, mode = 0o700): void {
  try {
    if (statSync(path).isDirectory()) return;
  } catch {
    // missing: made below
  }
  const parent = dirname(path);
  if (parent !== path) makeDir(parent, mode);
  try {
    mkdirSync(path, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * An append-only log file rotated by size: when the next write would pass maxBytes, `f` becomes `f.1`,
 * `f.1` becomes `f.2`, …, and `f.<keep>` is deleted. The manager is the only writer (children write to a
 * pipe it reads), so rotation needs no cooperation from the child and loses nothing.
 */
export class RotatingLogFile {
  private fd: number | undefined;
  private size = 0;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {}

  /** Appends whole lines; a file never passes maxBytes unless one line alone does. */
  write(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    this.open();
    let start = 0;
    while (start < bytes.length) {
      // As many whole lines as fit in this file.
      let end = start;
      for (;;) {
        const nl = bytes.indexOf(10, end);
        const next = nl < 0 ? bytes.length : nl + 1;
        if (end > start && this.size + (next - start) > this.maxBytes) break;
        end = next;
        if (this.size + (end - start) >= this.maxBytes || end >= bytes.length) break;
      }
      if (this.size > 0 && this.size + (end - start) > this.maxBytes) {
        this.rotate();
        this.open();
        continue;
      }
      let off = start;
      while (off < end) off += writeSync(this.fd!, bytes, off, end - off);
      this.size += end - start;
      start = end;
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** The files, newest first: path, path.1, … path.keep. */
  static files(path: string, keep: number): string[] {
    return [path, ...Array.from({ length: keep }, (_, i) => `${path}.${i + 1}`)];
  }

  private open(): void {
    if (this.fd !== undefined) return;
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  private rotate(): void {
    this.close();
    if (this.keep === 0) {
      rmSync(this.path, { force: true });
      return;
    }
    rmSync(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) renameIfExists(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    renameIfExists(this.path, `${this.path}.1`);
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
