import { readdirSync, statfsSync } from 'node:fs';
import {
  ClosedError,
  ExistsError,
  InvalidArgumentError,
  LibipcError,
  NotFoundError,
  PermissionError,
} from './errors.js';
import { native, type NativeSegmentHandle } from './native.js';
import { objectName, validateKind, validateName } from './names.js';

export interface CreateOptions {
  /** File mode of the new object; 0o600 (owner only) unless asked otherwise. */
  mode?: number;
  /** Object kind: the segment is /dev/shm/libipc.<kind>.<name>. Default 'shm'. */
  kind?: string;
}
export interface OpenOptions {
  kind?: string;
}

const SHM_DIR = '/dev/shm';
const DEFAULT_KIND = 'shm';

/** Larger than the tmpfs behind /dev/shm can never be backed: refuse it up front with the limit. */
function maxSegmentSize(): number {
  try {
    const fs = statfsSync(SHM_DIR);
    return fs.blocks * fs.bsize;
  } catch {
    return 2 ** 40;
  }
}

function validateSize(size: unknown): asserts size is number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
    throw new InvalidArgumentError(`size must be a positive whole number of bytes, got ${String(size)}`);
  }
  const max = maxSegmentSize();
  if (size > max) {
    throw new InvalidArgumentError(
      `size ${size} is larger than ${SHM_DIR} can hold (${max} bytes); ask for less, or enlarge the tmpfs mounted at ${SHM_DIR}`,
    );
  }
}

function validateMode(mode: unknown): number {
  if (mode === undefined) return 0o600;
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new InvalidArgumentError(`mode must be a file mode from 0 to 0o777, e.g. 0o600, got ${String(mode)}`);
  }
  return mode;
}

/** Turns the addon's errno into the error of DESIGN.md's table. */
export function translateNativeError(err: unknown, what: string): never {
  const code = (err as { errno?: string }).errno;
  switch (code) {
    case 'EEXIST':
      throw new ExistsError(`${what} already exists; open it instead, or use openOrCreate`);
    case 'ENOENT':
      throw new NotFoundError(`${what} does not exist; create it first, or use openOrCreate`);
    case 'EACCES':
    case 'EPERM':
      throw new PermissionError(`the OS refused access to ${what}; check its owner and mode in ${SHM_DIR}`);
    case 'ENOSPC':
    case 'ENOMEM':
    case 'EFBIG':
      throw new InvalidArgumentError(`${what} cannot be that large here: ${(err as Error).message}`);
    case 'ECLOSED':
      throw new ClosedError(`${what} is closed; open it again to use it`);
    default:
      if (err instanceof LibipcError) throw err;
      throw new LibipcError('ERR_LIBIPC_SYSTEM', `${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** A short synchronous pause for bounded retries in synchronous code (microsecond-long windows). */
export function pauseSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A named POSIX shared-memory segment, mapped into this process. Every process that maps the same
 * name sees the same bytes through `buffer`.
 */
export class SharedMemory {
  readonly name: string;
  readonly kind: string;
  /** The POSIX object name, e.g. /libipc.shm.audio (in /dev/shm without the slash). */
  readonly objectName: string;
  readonly size: number;
  /** True when this call created the object; false when it opened an existing one. */
  readonly created: boolean;
  /** @internal */
  readonly handle: NativeSegmentHandle;
  private closed = false;

  private constructor(name: string, kind: string, handle: NativeSegmentHandle) {
    this.name = name;
    this.kind = kind;
    this.objectName = objectName(kind, name);
    this.handle = handle;
    this.size = handle.size;
    this.created = handle.created;
  }

  /** Creates a new segment of `size` bytes, zero-filled. ERR_LIBIPC_EXISTS if the name exists. */
  static create(name: string, size: number, opts: CreateOptions = {}): SharedMemory {
    const kind = opts.kind ?? DEFAULT_KIND;
    validateName(name, 'segment name');
    validateKind(kind);
    validateSize(size);
    const mode = validateMode(opts.mode);
    const path = objectName(kind, name);
    try {
      return new SharedMemory(name, kind, new (native().SegmentHandle)(path, size, true, mode));
    } catch (err) {
      translateNativeError(err, `segment ${path.slice(1)}`);
    }
  }

  /** Maps an existing segment at its full size. ERR_LIBIPC_NOT_FOUND if absent. */
  static open(name: string, opts: OpenOptions = {}): SharedMemory {
    const kind = opts.kind ?? DEFAULT_KIND;
    validateName(name, 'segment name');
    validateKind(kind);
    const path = objectName(kind, name);
    // A creator sits between shm_open and ftruncate for microseconds: an empty object is retried briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        return new SharedMemory(name, kind, new (native().SegmentHandle)(path, 0, false, 0));
      } catch (err) {
        if ((err as { errno?: string }).errno === 'ENODATA' && attempt < 200) {
          pauseSync(1);
          continue;
        }
        if ((err as { errno?: string }).errno === 'ENODATA') {
          throw new NotFoundError(`segment ${path.slice(1)} exists but has no size yet (its creator may have died); remove it with SharedMemory.unlink`);
        }
        translateNativeError(err, `segment ${path.slice(1)}`);
      }
    }
  }

  /** Opens the segment if it exists, else creates it with `size` bytes. Never resizes an existing one. */
  static openOrCreate(name: string, size: number, opts: CreateOptions = {}): SharedMemory {
    validateSize(size);
    for (let attempt = 0; ; attempt++) {
      try {
        return SharedMemory.create(name, size, opts);
      } catch (err) {
        if (!(err instanceof ExistsError)) throw err;
      }
      try {
        return SharedMemory.open(name, { kind: opts.kind });
      } catch (err) {
        // Removed between our create and open: try again.
        if (!(err instanceof NotFoundError) || attempt > 100) throw err;
      }
    }
  }

  /** Removes the name; processes that mapped it keep their mapping. False if it did not exist. */
  static unlink(name: string, opts: OpenOptions = {}): boolean {
    const kind = opts.kind ?? DEFAULT_KIND;
    validateName(name, 'segment name');
    validateKind(kind);
    const path = objectName(kind, name);
    try {
      return native().unlinkSegment(path);
    } catch (err) {
      translateNativeError(err, `segment ${path.slice(1)}`);
    }
  }

  static exists(name: string, opts: OpenOptions = {}): boolean {
    const kind = opts.kind ?? DEFAULT_KIND;
    validateName(name, 'segment name');
    validateKind(kind);
    return native().segmentInode(objectName(kind, name)) !== 0n;
  }

  /** Names of the libipc segments of a kind (all kinds when omitted), as `<kind>.<name>` or `<name>`. */
  static list(kind?: string): string[] {
    if (kind !== undefined) validateKind(kind);
    const prefix = kind === undefined ? 'libipc.' : `libipc.${kind}.`;
    return readdirSync(SHM_DIR)
      .filter((f) => f.startsWith(prefix))
      .map((f) => f.slice(prefix.length))
      .sort();
  }

  /** The mapped bytes. Throws ERR_LIBIPC_CLOSED after close(); views made earlier become detached. */
  get buffer(): ArrayBuffer {
    const buf = this.closed ? undefined : this.handle.buffer;
    if (!buf) throw new ClosedError(`segment ${this.name} is closed; open it again to use it`);
    return buf;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The inode behind this mapping: tells whether the name still points at this object. @internal */
  get inode(): bigint {
    return this.handle.inode;
  }

  /** Unmaps (once no native wait still uses it). Idempotent. Pending waits reject with ERR_LIBIPC_CLOSED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
  }

  /** @internal Throws ERR_LIBIPC_CLOSED when closed. */
  assertOpen(): void {
    if (this.closed) throw new ClosedError(`segment ${this.name} is closed; open it again to use it`);
  }
}
