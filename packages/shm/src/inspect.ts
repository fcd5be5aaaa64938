import { lstatSync } from 'node:fs';
import { IncompatibleError, InvalidArgumentError, LibipcError, NotFoundError, SystemError } from './errors.js';
import { describeValue } from './describe.js';
import { validateKind, validateName } from './names.js';
import { option, parseOptions } from './options.js';
import { isAlive } from './process-identity.js';
import { HEADER_FORMAT, HEADER_SIZE, SEGMENT_MAGIC, SegmentHeader, type SegmentState } from './segment-header.js';
import { ownUid, SharedMemory } from './shared-memory.js';

// Read-only looks at libipc's objects in /dev/shm, for tools (`libipc shm ls`): nothing here joins a segment,
// takes its lock or writes a byte of it.

const SHM_DIR = '/dev/shm';
const MAX_PID = 2 ** 22 - 1;
const WITH_SEGMENT_OPTIONS = { strict: option.boolean() };

/** What the header of a libipc segment says, copied out of shared memory. */
export interface SegmentHeaderInfo {
  layoutVersion: number;
  headerFormat: number;
  state: SegmentState | 'empty';
  /** The kind written in the header (a segment whose header disagrees with its name is reported, not trusted). */
  kind: string;
  creator: { pid: number; uid: number; startTime: bigint; alive: boolean };
}

/** One object in /dev/shm named libipc.<kind>.<name>. */
export interface SegmentInfo {
  /** The file name in /dev/shm, e.g. libipc.chan.audio_ctrl_0. */
  object: string;
  kind: string;
  name: string;
  /** 'segment' (a regular file) or 'fifo' (a channel's doorbell); anything else is 'other'. */
  type: 'segment' | 'fifo' | 'other';
  size: number;
  mode: number;
  /** The OS's owner of the object. */
  uid: number;
  dev: bigint;
  inode: bigint;
  /** Present for a readable segment with a valid libipc header. */
  header?: SegmentHeaderInfo;
  /** Why the header could not be read or does not add up (another user's, corrupt, empty, …). */
  problem?: string;
}

/** Splits libipc.<kind>.<name>; undefined for a name that is not one of ours. */
export function parseObjectName(object: string): { kind: string; name: string } | undefined {
  const m = /^libipc\.([a-z][a-z0-9]{0,15})\.(.+)$/.exec(typeof object === 'string' ? object : '');
  return m ? { kind: m[1]!, name: m[2]! } : undefined;
}

/** Liveness of a pid read from shared memory: a value that cannot be a pid is a dead process, never an error. */
function aliveFromSegment(pid: number, startTime: bigint): boolean {
  return pid >= 1 && pid <= MAX_PID && isAlive(pid, startTime === 0n ? undefined : startTime);
}

function readHeader(header: SegmentHeader): SegmentHeaderInfo {
  const creator = header.creator;
  return {
    layoutVersion: header.layoutVersion,
    headerFormat: header.headerFormat,
    state: header.state,
    kind: header.kind,
    creator: { ...creator, alive: aliveFromSegment(creator.pid, creator.startTime) },
  };
}

/**
 * Looks at one object in /dev/shm (by its file name) without joining or changing it: type, size, owner and,
 * for a segment of this user, its header. Never follows a symbolic link. ERR_LIBIPC_NOT_FOUND when absent.
 */
export function inspectSegment(object: string): SegmentInfo {
  const parsed = parseObjectName(object);
  if (!parsed) throw new InvalidArgumentError(`object must be a name like libipc.<kind>.<name>, got ${describeValue(object)}`);
  let st;
  try {
    st = lstatSync(`${SHM_DIR}/${object}`, { bigint: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new NotFoundError(`${object} does not exist in ${SHM_DIR}`);
    throw new SystemError(`cannot look at ${SHM_DIR}/${object}: ${e.message}`, { errno: e.code ?? 'EIO', syscall: 'lstat', cause: err });
  }
  const info: SegmentInfo = {
    object,
    kind: parsed.kind,
    name: parsed.name,
    type: st.isFile() ? 'segment' : st.isFIFO() ? 'fifo' : 'other',
    size: Number(st.size),
    mode: Number(st.mode & 0o777n),
    uid: Number(st.uid),
    dev: st.dev,
    inode: st.ino,
  };
  if (info.type !== 'segment') return info;
  if (info.uid !== ownUid()) {
    // Mapping another user's object could fault if they shrink it: its header is not read.
    info.problem = `owned by uid ${info.uid}`;
    return info;
  }
  if (info.size === 0) {
    info.problem = 'empty (a creator died before it was made)';
    return info;
  }
  try {
    withSegment(parsed.kind, parsed.name, (_mem, header) => {
      info.header = readHeader(header);
    }, { strict: false });
  } catch (err) {
    if (!(err instanceof LibipcError)) throw err;
    info.problem = err.message;
  }
  if (info.header && !info.problem) info.problem = headerProblem(info.header, info.size, parsed.kind);
  if (info.problem === undefined) delete info.problem;
  return info;
}

function headerProblem(h: SegmentHeaderInfo, size: number, kind: string): string | undefined {
  if (h.headerFormat !== HEADER_FORMAT) return `header format ${h.headerFormat} (this libipc reads ${HEADER_FORMAT})`;
  if (h.kind !== kind) return `its header says kind '${h.kind}'`;
  if (h.state === 'empty') return 'no libipc header';
  return size < HEADER_SIZE ? 'too small for a libipc header' : undefined;
}

/**
 * Maps libipc.<kind>.<name> of this user and calls `fn` with it and its header, then unmaps. With `strict`
 * (the default) the header must be a libipc header of that kind, format and size (ERR_LIBIPC_INCOMPATIBLE
 * otherwise). `fn` must only read: the segment is not joined, so its users do not know it is mapped.
 */
export function withSegment<T>(kind: string, name: string, fn: (mem: SharedMemory, header: SegmentHeader) => T, opts: { strict?: boolean } = {}): T {
  const strict = parseOptions(opts, WITH_SEGMENT_OPTIONS, 'withSegment options').strict ?? true;
  validateKind(kind);
  validateName(name, 'segment name');
  if (typeof fn !== 'function') throw new InvalidArgumentError(`fn must be a function (mem, header) => result, got ${describeValue(fn)}`);
  const mem = SharedMemory.open(name, { kind });
  try {
    const what = `segment libipc.${kind}.${name}`;
    if (mem.size < HEADER_SIZE) throw new IncompatibleError(`${what} is too small (${mem.size} bytes) for a libipc header`);
    const header = new SegmentHeader(mem);
    if (strict) {
      if (header.magic !== SEGMENT_MAGIC) throw new IncompatibleError(`${what} has no libipc header (bad magic)`);
      if (header.headerFormat !== HEADER_FORMAT) throw new IncompatibleError(`${what} has header format ${header.headerFormat}, this libipc reads ${HEADER_FORMAT}`);
      if (header.kind !== kind) throw new IncompatibleError(`${what} holds a '${header.kind}' segment, not '${kind}'`);
      if (header.size !== mem.size) throw new IncompatibleError(`${what} is corrupt: its header says ${header.size} bytes, it has ${mem.size}`);
    } else if (header.magic !== SEGMENT_MAGIC) {
      throw new IncompatibleError(`no libipc header (magic 0x${header.magic.toString(16)})`);
    }
    return fn(mem, header);
  } finally {
    mem.close();
  }
}

/** Every libipc object in /dev/shm (file names, sorted): segments and doorbell FIFOs alike. */
export function listObjects(): string[] {
  return SharedMemory.list()
    .map((n) => `libipc.${n}`)
    .filter((n) => parseObjectName(n) !== undefined);
}

/** Whether a pid + start time read from a segment is a live process (a corrupt pid is a dead one). */
export function isAliveIdentity(pid: number, startTime: bigint): boolean {
  if (typeof pid !== 'number' || (startTime !== undefined && typeof startTime !== 'bigint')) return false;
  return aliveFromSegment(pid, startTime);
}
