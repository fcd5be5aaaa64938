import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

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

  write(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    this.open();
    if (this.size > 0 && this.size + bytes.length > this.maxBytes) this.rotate();
    this.open();
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd!, bytes, off);
    this.size += bytes.length;
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
