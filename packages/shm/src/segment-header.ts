import { ExistsError, IncompatibleError, InvalidArgumentError, NotFoundError, TimeoutError } from './errors.js';
import { native } from './native.js';
import { objectName, validateKind, validateName } from './names.js';
import { option, parseOptions } from './options.js';
import { isAlive, selfIdentity } from './process-identity.js';
import { RobustMutex } from './robust-mutex.js';
import { checkOwner, ownUid, pauseSync, SharedMemory, translateNativeError } from './shared-memory.js';
import { validateMemory, validateTimeout } from './validate.js';
import { describeValue } from './describe.js';
import { waitSync, wake } from './wait.js';

/**
 * The 128-byte header every libipc segment starts with (docs/layout.md):
 *   0 u32 magic 'LIPC'   4 u32 layout version   8 u32 state   12 u32 header size
 *  16 u64 total size    24 u32 creator pid     28 u32 creator uid   32 u64 creator start time
 *  40 char[16] kind     56 u32 header format   64 RobustMutex (16 bytes) guarding the segment
 */
export const HEADER_SIZE = 128;
export const SEGMENT_MAGIC = 0x4350494c; // 'LIPC' little-endian
/** 2: robust mutex words carry a generation and an ABANDONED bit (docs/layout.md). */
export const HEADER_FORMAT = 2;
const OFF_MAGIC = 0;
const OFF_VERSION = 4;
const OFF_STATE = 8;
const OFF_HEADER_SIZE = 12;
const OFF_SIZE = 16;
const OFF_CREATOR_PID = 24;
const OFF_CREATOR_UID = 28;
const OFF_CREATOR_START = 32;
const OFF_KIND = 40;
const KIND_BYTES = 16;
const OFF_FORMAT = 56;
export const HEADER_LOCK_OFFSET = 64;

export type SegmentState = 'initialising' | 'ready' | 'retired';
const STATE_CODES: Record<SegmentState, number> = { initialising: 1, ready: 2, retired: 3 };
const STATE_NAMES = ['empty', 'initialising', 'ready', 'retired'] as const;

/** A view of a segment's header. */
export class SegmentHeader {
  readonly mem: SharedMemory;
  /** Guards the segment's structure; recover on ownerDied. */
  readonly lock: RobustMutex;
  private readonly view: DataView;
  private readonly words: Int32Array;

  constructor(mem: SharedMemory) {
    validateMemory(mem);
    if (mem.size < HEADER_SIZE) {
      throw new IncompatibleError(`segment ${mem.objectName.slice(1)} is too small (${mem.size} bytes) to hold a ${HEADER_SIZE}-byte libipc header`);
    }
    this.mem = mem;
    this.view = new DataView(mem.buffer, 0, HEADER_SIZE);
    this.words = new Int32Array(mem.buffer, 0, HEADER_SIZE / 4);
    this.lock = new RobustMutex(mem, HEADER_LOCK_OFFSET);
  }

  get magic(): number {
    return Atomics.load(this.words, OFF_MAGIC / 4) >>> 0;
  }
  get layoutVersion(): number {
    return this.view.getUint32(OFF_VERSION, true);
  }
  get headerFormat(): number {
    return this.view.getUint32(OFF_FORMAT, true);
  }
  get state(): SegmentState | 'empty' {
    return STATE_NAMES[Atomics.load(this.words, OFF_STATE / 4)] ?? 'empty';
  }
  get kind(): string {
    const bytes = new Uint8Array(this.mem.buffer, OFF_KIND, KIND_BYTES);
    const end = bytes.indexOf(0);
    return Buffer.from(bytes.subarray(0, end < 0 ? KIND_BYTES : end)).toString('latin1');
  }
  get size(): number {
    return Number(this.view.getBigUint64(OFF_SIZE, true));
  }
  get creator(): { pid: number; startTime: bigint; uid: number } {
    return {
      pid: this.view.getUint32(OFF_CREATOR_PID, true),
      startTime: this.view.getBigUint64(OFF_CREATOR_START, true),
      uid: this.view.getUint32(OFF_CREATOR_UID, true),
    };
  }

  /** Writes a fresh header in state 'initialising' (creator only). */
  initialise(kind: string, layoutVersion: number): void {
    validateKind(kind);
    if (!Number.isInteger(layoutVersion) || layoutVersion < 0 || layoutVersion > 2 ** 32 - 1) {
      throw new InvalidArgumentError(`layoutVersion must be a u32, got ${describeValue(layoutVersion)}`);
    }
    const self = selfIdentity();
    this.view.setUint32(OFF_VERSION, layoutVersion, true);
    this.view.setUint32(OFF_HEADER_SIZE, HEADER_SIZE, true);
    this.view.setBigUint64(OFF_SIZE, BigInt(this.mem.size), true);
    // Start time before pid: a reader that sees the pid also sees its start time.
    this.view.setBigUint64(OFF_CREATOR_START, self.startTime, true);
    this.view.setUint32(OFF_CREATOR_UID, ownUid(), true);
    this.view.setUint32(OFF_CREATOR_PID, self.pid, true);
    new Uint8Array(this.mem.buffer, OFF_KIND, KIND_BYTES).set(Buffer.from(kind, 'latin1').subarray(0, KIND_BYTES));
    this.view.setUint32(OFF_FORMAT, HEADER_FORMAT, true);
    this.lock.mem.handle.mutexInit(HEADER_LOCK_OFFSET);
    Atomics.store(this.words, OFF_MAGIC / 4, SEGMENT_MAGIC | 0);
    this.setState('initialising');
  }

  setState(state: SegmentState): void {
    if (typeof state !== 'string' || !Object.prototype.hasOwnProperty.call(STATE_CODES, state)) {
      throw new InvalidArgumentError(`state must be 'initialising', 'ready' or 'retired', got ${describeValue(state)}`);
    }
    Atomics.store(this.words, OFF_STATE / 4, STATE_CODES[state]);
    wake(this.mem, OFF_STATE);
  }

  /**
   * Marks the segment retired and removes its name, so that openers re-create it instead of joining a
   * segment that is going away. Call while holding `lock`, as the last user.
   */
  retire(): void {
    this.setState('retired');
    this.mem.unlinkIfSame();
  }

  /** Waits (synchronously, bounded) while a live creator is still initialising. */
  waitWhileInitialising(timeoutMs: number): SegmentState | 'empty' {
    timeoutMs = validateTimeout(timeoutMs);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const code = Atomics.load(this.words, OFF_STATE / 4);
      const state = STATE_NAMES[code] ?? 'empty';
      if (state !== 'empty' && state !== 'initialising') return state;
      // No creator recorded (a header-less leftover) or a dead one: nobody will finish it.
      const creator = this.creator;
      if (creator.pid === 0 || !isAlive(creator.pid, creator.startTime || undefined)) return state;
      const left = deadline - performance.now();
      if (left <= 0) return state;
      waitSync(this.mem, OFF_STATE, code, Math.min(left, 10));
    }
  }
}

export interface SegmentSpec {
  kind: string;
  name: string;
  layoutVersion: number;
  /** Total bytes including the header; used only when this call creates the segment. */
  size: number;
  mode?: number;
  /** Lays out the body of a new segment (after the header); runs before anyone can see it. */
  init?: (mem: SharedMemory, header: SegmentHeader) => void;
  /** How long an opener waits for a segment that is being replaced or initialised (default 2000 ms). */
  openTimeoutMs?: number;
  /** Only open: ERR_LIBIPC_NOT_FOUND instead of creating. */
  openOnly?: boolean;
  /** Other uids whose segments may be joined (default: only our own uid's; see docs/security.md). */
  allowUsers?: readonly number[];
}

const SEGMENT_SPEC = {
  kind: option.custom<string>(() => true, 'a segment kind'), // checked by validateKind
  name: option.custom<string>(() => true, 'a name'), // checked by validateName
  layoutVersion: option.int(0, 2 ** 32 - 1),
  size: option.int(HEADER_SIZE, Number.MAX_SAFE_INTEGER).describe(`a size in bytes of at least ${HEADER_SIZE}`),
  mode: option.int(0, 0o777),
  init: option.custom<SegmentSpec['init']>((v) => typeof v === 'function', 'a function (mem, header) => void'),
  openTimeoutMs: option.ms(0, 60_000),
  openOnly: option.boolean(),
  allowUsers: option.custom<number[]>((v) => Array.isArray(v) && v.every((u) => Number.isInteger(u) && u >= 0), 'an array of uids'),
};

export interface AttachedSegment {
  mem: SharedMemory;
  header: SegmentHeader;
  created: boolean;
}

function checkCompatible(header: SegmentHeader, spec: SegmentSpec): void {
  const what = `segment ${header.mem.objectName.slice(1)}`;
  if (header.mem.size < HEADER_SIZE || header.magic !== SEGMENT_MAGIC) {
    throw new IncompatibleError(`${what} is not a libipc segment (bad magic); remove it if it is a leftover`);
  }
  if (header.headerFormat !== HEADER_FORMAT) {
    throw new IncompatibleError(
      `${what} was made by another libipc version (header format ${header.headerFormat}, this code reads ${HEADER_FORMAT}); ` +
        'stop the processes of the other version (or clear its storage) and retry',
    );
  }
  if (header.kind !== spec.kind) {
    throw new IncompatibleError(`${what} holds a '${header.kind}' segment, not '${spec.kind}'`);
  }
  if (header.layoutVersion !== spec.layoutVersion) {
    throw new IncompatibleError(
      `${what} has layout version ${header.layoutVersion}, this code reads version ${spec.layoutVersion}; ` +
        'stop the processes of the other version (or clear its storage) and retry',
    );
  }
  if (header.size !== header.mem.size) {
    throw new IncompatibleError(`${what} is corrupt: its header says ${header.size} bytes, it has ${header.mem.size}`);
  }
  // The header's creator must be the object's owner (or a user the caller trusts): a squatter cannot pass a
  // segment it owns off as ours by writing our uid into it.
  checkOwner(what, header.creator.uid, spec.allowUsers);
}

/**
 * A new segment, initialised while nobody can see it and then given its name in one step: no opener ever
 * finds it empty or half-made, and a creator killed on the way leaves nothing behind. Undefined when the
 * name is taken.
 */
function tryCreate(spec: SegmentSpec): AttachedSegment | undefined {
  const mem = SharedMemory.createUnpublished(spec.name, spec.size, { kind: spec.kind, mode: spec.mode });
  try {
    const header = new SegmentHeader(mem);
    header.initialise(spec.kind, spec.layoutVersion);
    spec.init?.(mem, header);
    header.setState('ready');
    mem.publish();
    return { mem, header, created: true };
  } catch (err) {
    mem.close();
    if (err instanceof ExistsError) return undefined;
    throw err;
  }
}

/** Decides what to do with an existing segment: join it, or retry after it was retired or found stale. */
function inspect(mem: SharedMemory, spec: SegmentSpec, deadline: number, attempt: number): 'join' | 'retry' {
  const what = `segment ${mem.objectName.slice(1)}`;
  if (mem.size < HEADER_SIZE) throw new IncompatibleError(`${what} is not a libipc segment (too small); remove it if it is a leftover`);
  const header = new SegmentHeader(mem);
  // Foreign bytes: their state and creator words are garbage, not a creator to wait for. (Magic 0 is a
  // header-less leftover: handled below by its creator's liveness.)
  if (header.magic !== 0 && header.magic !== SEGMENT_MAGIC) checkCompatible(header, spec);
  const state = header.waitWhileInitialising(Math.max(0, deadline - performance.now()));
  if (state === 'ready') {
    checkCompatible(header, spec);
    return 'join';
  }
  if (state === 'retired') {
    // The retiring process removes the name right after marking it; if it died in between, we do it.
    if (attempt > 20) mem.unlinkIfSame();
    else pauseSync(1);
    return 'retry';
  }
  const creator = header.creator;
  if (creator.pid !== 0 && isAlive(creator.pid, creator.startTime || undefined)) {
    throw new TimeoutError(`${what} is still being initialised by process ${creator.pid} (an older libipc?); retry later`);
  }
  mem.unlinkIfSame(); // its creator died while initialising: nobody will finish it
  return 'retry';
}

/** Opens an existing segment; an empty leftover at the name is removed (undefined: try again). */
function openExisting(spec: SegmentSpec): SharedMemory | undefined {
  const path = objectName(spec.kind, spec.name);
  let identity: [bigint, bigint] | undefined;
  try {
    identity = native().segmentIdentity(path);
  } catch (err) {
    translateNativeError(err, `segment ${path.slice(1)}`);
  }
  try {
    return SharedMemory.open(spec.name, { kind: spec.kind, allowUsers: spec.allowUsers ? [...spec.allowUsers] : undefined });
  } catch (err) {
    const empty = err instanceof IncompatibleError && /is empty/.test(err.message);
    if (!empty || identity === undefined) throw err;
  }
  try {
    native().unlinkSegmentIf(path, identity[0], identity[1]);
  } catch (err) {
    translateNativeError(err, `segment ${path.slice(1)}`);
  }
  return undefined;
}

/**
 * Creates or joins a headed segment, following DESIGN.md: a segment is published only once initialised; one
 * that is being retired, or a leftover (empty, header-less, or whose creator died while initialising), is
 * replaced. Segments of another uid are refused unless allowed (docs/security.md).
 */
export function attachSegment(given: SegmentSpec): AttachedSegment {
  if (typeof given !== 'object' || given === null) throw new InvalidArgumentError('attachSegment needs a spec: { kind, name, layoutVersion, size }');
  const spec = parseOptions(given, SEGMENT_SPEC, 'attachSegment spec') as SegmentSpec;
  validateKind(spec.kind);
  validateName(spec.name, 'segment name');
  if (spec.layoutVersion === undefined || spec.size === undefined) {
    throw new InvalidArgumentError('attachSegment spec needs layoutVersion (a whole number) and size (bytes, at least 128)');
  }
  const openTimeoutMs = validateTimeout(spec.openTimeoutMs ?? 2000, 'openTimeoutMs');
  const deadline = performance.now() + openTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0 && performance.now() > deadline + 1000) {
      throw new TimeoutError(
        `segment libipc.${spec.kind}.${spec.name} could not be attached within ${openTimeoutMs} ms: it was removed and re-created ` +
          'again and again by other processes; retry later',
      );
    }
    // Join first: creating costs a full-size allocation, and on a full /dev/shm only joining can succeed.
    let mem: SharedMemory | undefined;
    try {
      mem = openExisting(spec);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      if (spec.openOnly) throw err;
    }
    if (mem === undefined) {
      const created = spec.openOnly ? undefined : tryCreate(spec);
      if (created) return created;
      continue; // someone else created it first (or a leftover was removed): join theirs
    }
    let outcome: 'join' | 'retry';
    try {
      outcome = inspect(mem, spec, deadline, attempt);
    } catch (err) {
      mem.close();
      throw err;
    }
    if (outcome === 'join') return { mem, header: new SegmentHeader(mem), created: false };
    mem.close();
    if (spec.openOnly) throw new NotFoundError(`segment libipc.${spec.kind}.${spec.name} does not exist`);
  }
}
