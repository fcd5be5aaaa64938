import { readdirSync, statfsSync } from 'node:fs';
import {
  ClosedError,
  ExistsError,
  IncompatibleError,
  InvalidArgumentError,
  LibipcError,
  NoSpaceError,
  NotFoundError,
  PermissionError,
  SystemError,
} from './errors.js';
import { native, type NativeSegmentHandle } from './native.js';
import { objectName, validateKind, validateName } from './names.js';
import { describeValue, option, parseOptions } from './options.js';

export interface CreateOptions {
  /** File mode of the new object; 0o600 (owner only) unless asked otherwise. */
  mode?: number;
  /** Object kind: the segment is /dev/shm/libipc.<kind>.<name>. Default 'shm'. */
  kind?: string;
}
export interface OpenOptions {
  kind?: string;
  /**
   * Other users (uids) whose segments this process may join. By default only segments owned by this
   * process's own uid are opened — root included: another user's segment is ERR_LIBIPC_PERMISSION.
   */
  allowUsers?: number[];
}

const SHM_DIR = '/dev/shm';
const DEFAULT_KIND = 'shm';

const uidList = option.custom<number[]>(
  (v) => Array.isArray(v) && v.length <= 1024 && v.every((u) => Number.isInteger(u) && u >= 0 && u <= 2 ** 32 - 1),
  'an array of uids (whole numbers)',
);
const kindOption = option.custom<string>((v) => typeof v === 'string' && v.length <= 16, 'a segment kind (1-16 lowercase letters or digits)');
const modeOption = option.int(0, 0o777).describe('a file mode from 0 to 0o777, e.g. 0o600');
const CREATE_SHAPE = { mode: modeOption, kind: kindOption, allowUsers: uidList };
const OPEN_SHAPE = { kind: kindOption, allowUsers: uidList };

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
    throw new InvalidArgumentError(`size must be a positive whole number of bytes, got ${describeValue(size)}`);
  }
  const max = maxSegmentSize();
  if (size > max) {
    throw new InvalidArgumentError(
      `size ${size} is larger than ${SHM_DIR} can hold (${max} bytes); ask for less, or enlarge the tmpfs mounted at ${SHM_DIR}`,
    );
  }
}

/** This process's uid (0 where there are no uids). */
export function ownUid(): number {
  return process.getuid?.() ?? 0;
}

/** Refuses a segment owned by another user unless the caller allowed that uid (docs/security.md). */
export function checkOwner(what: string, uid: number, allowUsers: readonly number[] | undefined): void {
  if (uid === ownUid() || allowUsers?.includes(uid)) return;
  throw new PermissionError(
    `${what} belongs to uid ${uid}, not to this process's uid ${ownUid()}; refusing to join another user's segment ` +
      `(if you trust that user, pass allowUsers: [${uid}]; otherwise remove it as that user or as root)`,
  );
}

/** Turns the addon's errno into the error of DESIGN.md's table. */
export function translateNativeError(err: unknown, what: string): never {
  if (err instanceof LibipcError) throw err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as { errno?: unknown; syscall?: unknown; message?: unknown };
  const code = typeof e.errno === 'string' ? e.errno : undefined;
  const syscall = typeof e.syscall === 'string' ? e.syscall : 'unknown';
  const detail = typeof e.message === 'string' ? e.message : describeValue(err);
  if (typeof what !== 'string') what = 'operation';
  switch (code) {
    case 'EEXIST':
      throw new ExistsError(`${what} already exists; open it instead, or use openOrCreate`);
    case 'ENOENT':
      throw new NotFoundError(`${what} does not exist; create it first, or use openOrCreate`);
    case 'EACCES':
    case 'EPERM':
      throw new PermissionError(`the OS refused access to ${what}; check its owner and mode in ${SHM_DIR}`);
    case 'ELOOP':
      throw new PermissionError(`${what} is a symbolic link; libipc never follows one (someone may be planting links): remove it`);
    case 'EINVAL':
      if (syscall === 'open') {
        throw new IncompatibleError(`${what} is not a regular shared-memory object (a FIFO, directory or device sits at its name); remove it`);
      }
      break;
    case 'ENODATA':
      throw new IncompatibleError(`${what} is empty: a leftover of a creator that died (libipc never publishes an empty segment); remove it`);
    case 'ENOSPC':
    case 'EDQUOT':
      throw new NoSpaceError(`${what} cannot be created: ${SHM_DIR} is full (${detail}); free space there (libipc shm clean) or enlarge the tmpfs`);
    case 'ENOMEM':
    case 'EFBIG':
      throw new InvalidArgumentError(`${what} cannot be that large here: ${detail}`);
    case 'ECLOSED':
      throw new ClosedError(`${what} is closed; open it again to use it`);
  }
  throw new SystemError(`${what}: ${detail}`, { errno: code ?? 'EUNKNOWN', syscall, cause: err });
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
    // Only create/open/openOrCreate make one (the constructor is private in TypeScript, not in JavaScript).
    if (!(handle instanceof native().SegmentHandle)) {
      throw new InvalidArgumentError('use SharedMemory.create, SharedMemory.open or SharedMemory.openOrCreate to get a SharedMemory');
    }
    this.name = name;
    this.kind = kind;
    this.objectName = objectName(kind, name);
    this.handle = handle;
    this.size = handle.size;
    this.created = handle.created;
  }

  /**
   * Creates a new, unnamed segment of `size` bytes (pages reserved: a full /dev/shm is ERR_LIBIPC_NO_SPACE now,
   * never a SIGBUS later). It gets its name with publish(); attachSegment initialises it in between. @internal
   */
  static createUnpublished(name: string, size: number, opts: CreateOptions = {}): SharedMemory {
    const o = parseOptions(opts, CREATE_SHAPE, 'SharedMemory options');
    const kind = o.kind ?? DEFAULT_KIND;
    validateName(name, 'segment name');
    validateKind(kind);
    validateSize(size);
    const path = objectName(kind, name);
    try {
      return new SharedMemory(name, kind, new (native().SegmentHandle)(path, size, true, o.mode ?? 0o600));
    } catch (err) {
      translateNativeError(err, `segment ${path.slice(1)}`);
    }
  }

  /** Creates a new segment of `size` bytes, zero-filled. ERR_LIBIPC_EXISTS if the name exists. */
  static create(name: string, size: number, opts: CreateOptions = {}): SharedMemory {
    const mem = SharedMemory.createUnpublished(name, size, opts);
    try {
      mem.publish();
    } catch (err) {
      mem.close();
      throw err;
    }
    return mem;
  }

  /**
   * Maps an existing segment at its full size. ERR_LIBIPC_NOT_FOUND if absent; never follows a symlink; a
   * segment owned by another uid is ERR_LIBIPC_PERMISSION unless allowed with `allowUsers`.
   */
  static open(name: string, opts: OpenOptions = {}): SharedMemory {
    const o = parseOptions(opts, OPEN_SHAPE, 'SharedMemory options');
    const kind = o.kind ?? DEFAULT_KIND;
    validateName(name, 'segment name');
    validateKind(kind);
    const path = objectName(kind, name);
    let mem: SharedMemory;
    try {
      mem = new SharedMemory(name, kind, new (native().SegmentHandle)(path, 0, false, 0));
    } catch (err) {
      translateNativeError(err, `segment ${path.slice(1)}`);
    }
    try {
      checkOwner(`segment ${path.slice(1)}`, mem.ownerUid, o.allowUsers);
    } catch (err) {
      mem.close();
      throw err;
    }
    return mem;
  }

  /** Opens the segment if it exists, else creates it with `size` bytes. Never resizes an existing one. */
  static openOrCreate(name: string, size: number, opts: CreateOptions & OpenOptions = {}): SharedMemory {
    validateSize(size);
    const o = parseOptions(opts, CREATE_SHAPE, 'SharedMemory options');
    for (let attempt = 0; ; attempt++) {
      try {
        return SharedMemory.create(name, size, { mode: o.mode, kind: o.kind });
      } catch (err) {
        if (!(err instanceof ExistsError)) throw err;
      }
      try {
        return SharedMemory.open(name, { kind: o.kind, allowUsers: o.allowUsers });
      } catch (err) {
        // Removed between our create and open: try again.
        if (!(err instanceof NotFoundError) || attempt > 100) throw err;
      }
    }
  }

  /** Removes the name; processes that mapped it keep their mapping. False if it did not exist. */
  static unlink(name: string, opts: OpenOptions = {}): boolean {
    const o = parseOptions(opts, OPEN_SHAPE, 'SharedMemory options');
    const kind = o.kind ?? DEFAULT_KIND;
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
    const o = parseOptions(opts, OPEN_SHAPE, 'SharedMemory options');
    const kind = o.kind ?? DEFAULT_KIND;
    validateName(name, 'segment name');
    validateKind(kind);
    try {
      return native().segmentIdentity(objectName(kind, name)) !== undefined;
    } catch (err) {
      translateNativeError(err, `segment libipc.${kind}.${name}`);
    }
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

  /** The uid owning the object (the OS's record, not the header's). */
  get ownerUid(): number {
    return this.handle.ownerUid;
  }

  /** Gives a segment made by createUnpublished its name (ERR_LIBIPC_EXISTS when taken). @internal */
  publish(): void {
    this.assertOpen();
    let published: boolean;
    try {
      published = this.handle.publish();
    } catch (err) {
      translateNativeError(err, `segment ${this.objectName.slice(1)}`);
    }
    if (!published) throw new ExistsError(`segment ${this.objectName.slice(1)} already exists; open it instead, or use openOrCreate`);
  }

  /**
   * Removes the name if it still refers to this very object (compared without opening it, so it works at
   * the fd limit); true when removed. Failures other than "already gone" or "replaced" throw. @internal
   */
  unlinkIfSame(): boolean {
    try {
      return this.handle.unlinkIfSame() === 'removed';
    } catch (err) {
      translateNativeError(err, `segment ${this.objectName.slice(1)}`);
    }
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
