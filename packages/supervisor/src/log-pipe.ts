import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, constants, fstatSync, openSync, readSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { PermissionError, SystemError } from '@libipc/shm';
import { RotatingLogFile } from './log-file.js';

const PARTIAL_LINE_MAX = 64 * 1024;

/**
 * One output stream of a service: a FIFO the child's stdout (or stderr) is opened on, read by the manager,
 * each line prefixed with an ISO timestamp and appended to a rotated file.
 *
 * Why a FIFO, opened read-write on both sides: the child keeps a reader of its own pipe open, so if the
 * manager dies the child's writes never fail with EPIPE (they wait in the pipe, and block once it is full,
 * 64 KiB); the next manager opens the same FIFO, by path, and carries on: nothing written is lost.
 * The manager holds it read-write too, so it never sees end-of-file between two runs of the child.
 */
export class LogPipe extends EventEmitter {
  private socket: Socket | undefined;
  private fd: number | undefined;
  private partial = '';
  private closed = false;
  /** Lines not written since the last failed write (0: writing works). */
  private dropped = 0;
  private dropReason = '';

  private constructor(
    readonly fifo: string,
    readonly file: RotatingLogFile,
  ) {
    super();
  }

  /** Creates the FIFO when missing (mkfifo -m 600) and starts reading it. */
  static async open(fifo: string, file: RotatingLogFile): Promise<LogPipe> {
    const p = new LogPipe(fifo, file);
    let fd: number;
    try {
      fd = openFifo(fifo);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkfifo(fifo);
      fd = openFifo(fifo);
    }
    p.attach(fd);
    return p;
  }

  /**
   * Starts reading an already open pipe fd (e.g. /proc/<pid>/fd/1 of an adopted process). What the pipe already
   * holds was written while no manager read it: those lines follow a marker line saying so (their stamps are the
   * time they were read, not written; `since`: the stamp of the file's last line, when known).
   */
  static fromPath(path: string, fifo: string, file: RotatingLogFile, since?: string): LogPipe {
    const p = new LogPipe(fifo, file);
    const fd = openFifo(path);
    p.fd = fd;
    p.takeBacklog(since);
    p.attach(fd);
    return p;
  }

  /** Reads what the pipe holds right now; `flushPartial` (the child exited) also writes out a trailing partial line. */
  drain(flushPartial: boolean): void {
    if (this.fd === undefined || this.closed) return;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, buf, 0, buf.length, null);
      } catch {
        break; // EAGAIN: empty
      }
      if (n <= 0) break;
      this.take(buf.toString('utf8', 0, n));
    }
    if (flushPartial && this.partial !== '') {
      this.emitLine(this.partial);
      this.partial = '';
    }
  }

  /** Drains, stops reading, closes; `unlink` also removes the FIFO (the service is gone for good). */
  close(unlink: boolean): void {
    if (this.closed) return;
    this.drain(true);
    this.closed = true;
    this.socket?.destroy();
    this.socket = undefined;
    this.fd = undefined;
    this.file.close();
    if (unlink) rmSync(this.fifo, { force: true });
    this.emit('close');
  }

  private attach(fd: number): void {
    this.fd = fd;
    // libuv polls the pipe: no thread of the pool waits on it.
    const s = new Socket({ fd, readable: true, writable: false });
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => this.take(chunk));
    s.on('error', () => {});
    s.unref();
    this.socket = s;
  }

  /** Whole lines of `chunk` (after what is left of the last one), CR of CRLF endings dropped. */
  private split(chunk: string): string[] {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop()!;
    if (this.partial.length > PARTIAL_LINE_MAX) {
      lines.push(this.partial);
      this.partial = '';
    }
    return lines.map(noCr);
  }

  private take(chunk: string): void {
    this.write(this.split(chunk));
  }

  /** Reads what the pipe held before we attached; marks it as written while nobody was reading. */
  private takeBacklog(since: string | undefined): void {
    let text = '';
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd!, buf, 0, buf.length, null);
      } catch {
        break; // EAGAIN: empty
      }
      if (n <= 0) break;
      text += buf.toString('utf8', 0, n);
    }
    const lines = this.split(text);
    if (lines.length === 0) return;
    const when = since ? ` after ${since}` : '';
    this.write([`[libipc] the ${lines.length} line(s) below were written${when} while no manager was reading; they are stamped with the time they were read`, ...lines]);
  }

  private write(lines: string[]): void {
    if (lines.length === 0) return;
    const ts = new Date().toISOString();
    let out = '';
    for (const l of lines) out += `${ts} ${l}\n`;
    this.append(out, lines.length);
    for (const l of lines) this.emit('line', `${ts} ${l}`);
  }

  private emitLine(partial: string): void {
    const l = noCr(partial);
    const line = `${new Date().toISOString()} ${l}`;
    this.append(`${line}\n`, 1);
    this.emit('line', line);
  }

  /**
   * Writes to the file. A failing write (a full disk) is reported once ('write-error') and the lines are counted
   * as dropped until a write succeeds again, which first records how many were lost: a service printing
   * thousands of lines a second onto a full disk gives one warning, not thousands.
   */
  private append(text: string, lines: number): void {
    try {
      if (this.dropped > 0) {
        this.file.write(`${new Date().toISOString()} [libipc] ${this.dropped} line(s) were dropped: the log file could not be written (${this.dropReason})\n`);
        this.dropped = 0;
      }
      this.file.write(text);
    } catch (err) {
      if (this.dropped === 0) this.emit('write-error', err);
      this.dropped += lines;
      this.dropReason = (err as NodeJS.ErrnoException).code ?? 'an error';
    }
  }
}

function noCr(l: string): string {
  return l.endsWith('\r') ? l.slice(0, -1) : l;
}

/** Opens a FIFO read-write without blocking, never through a symlink; refuses anything but our own FIFO. */
function openFifo(path: string): number {
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  // BigInt stats: a plain fstat of a pipe would leave S_IFIFO in Node's shared stat buffer (see @libipc/process ready()).
  const st = fstatSync(fd, { bigint: true });
  if (!st.isFIFO() || (process.getuid && st.uid !== BigInt(process.getuid()))) {
    closeSync(fd);
    throw new PermissionError(`${path} is not a FIFO owned by this user; remove it (the supervisor creates its log pipes itself)`);
  }
  return fd;
}

// Node has no mkfifo(3); coreutils' mkfifo does it. The FIFOs asked for in one turn of the event loop are made
// by one mkfifo process (starting 500 services at once runs one, not 1000), and a FIFO outlives restarts.
let batch: { paths: string[]; done: Promise<void> } | undefined;

function mkfifo(path: string): Promise<void> {
  if (!batch) {
    const paths: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        batch = undefined;
        execFile('mkfifo', ['-m', '600', '--', ...paths], (err, _out, stderr) => {
          // "File exists" for one path is fine: it is opened (and checked) after this anyway.
          const other = stderr.split('\n').filter((l) => l.trim() !== '' && !/File exists/.test(l));
          if (!err || other.length === 0) return resolve();
          reject(new SystemError(`cannot create log pipes: ${other.join('; ') || err.message}`, { errno: 'EIO', syscall: 'mkfifo', cause: err }));
        });
      });
    });
    batch = { paths, done };
  }
  batch.paths.push(path);
  return batch.done;
}
