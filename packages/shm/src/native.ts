import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnsupportedPlatformError } from './errors.js';

/** The addon's surface, as seen by the TypeScript layer (internal). */
export interface NativeSegmentHandle {
  readonly buffer: ArrayBuffer | undefined;
  readonly size: number;
  readonly created: boolean;
  readonly dev: bigint;
  readonly inode: bigint;
  /** Owner uid and permission bits of the object (fstat at open or create). */
  readonly ownerUid: number;
  readonly mode: number;
  /** A created segment gets its name: false when the name is taken. */
  publish(): boolean;
  /** Removes the name only while it refers to this object (lstat, no fd). */
  unlinkIfSame(): 'removed' | 'gone' | 'replaced';
  close(): void;
  /** Settled at once, or 'pending' and `done` is called from the event loop. */
  waitAsync(
    offset: number,
    expected: number,
    timeoutMs: number,
    spinUs: number,
    done: (outcome: WaitOutcome | 'closed') => void,
    ref?: boolean,
  ): WaitOutcome | 'closed' | 'pending';
  leaseAcquire(offset: number): boolean;
  leaseRelease(offset: number): boolean;
  leaseState(offset: number): 'free' | 'held' | 'released' | 'owner-died';
  leasePrepareWait(offset: number): [wordOffset: number, value: number] | 'free' | 'held' | 'released' | 'owner-died';
  leaseClear(offset: number): boolean;
  leaseHolder(offset: number): [pid: number, tid: number];
  waitSync(offset: number, expected: number, timeoutMs: number): WaitOutcome;
  wake(offset: number, count: number): number;
  mutexInit(offset: number): void;
  mutexTryLock(offset: number): LockOutcome;
  mutexLockSync(offset: number, timeoutMs: number): LockOutcome;
  mutexUnlock(offset: number): boolean;
  mutexPrepareWait(offset: number): [observed: number, ownerPid: number, ownerStart: bigint] | null;
}
export type WaitOutcome = 'ok' | 'not-equal' | 'timed-out';
export type LockOutcome = 'acquired' | 'owner-died' | 'busy' | 'timed-out';


export interface NativeBinding {
  SegmentHandle: new (objectName: string, size: number, create: boolean, mode: number) => NativeSegmentHandle;
  /** Watches a pid's exit (pidfd); the id names the watch. Throws with errno 'ESRCH' when the pid is gone. */
  pidWatchOpen(pid: number, onExit: () => void): number;
  /** Stops a watch (idempotent; a fired watch is already gone). */
  pidWatchClose(id: number): void;
  /** Whether a pending watch keeps the event loop alive. */
  pidWatchRef(id: number, ref: boolean): void;
  unlinkSegment(objectName: string): boolean;
  /** [dev, inode] behind a name (lstat), or undefined when absent. */
  segmentIdentity(objectName: string): [bigint, bigint] | undefined;
  /** Removes a name only while it still refers to (dev, inode). */
  unlinkSegmentIf(objectName: string, dev: bigint, inode: bigint): 'removed' | 'gone' | 'replaced';
  /** Wait threads this environment runs now (idle ones exit after about 2 s). */
  waitThreads(): number;
  processStartTime(pid: number): bigint | undefined;
  /** [pid, uid, gid] at the other end of a connected Unix socket (SO_PEERCRED). */
  peerCredentials(fd: number): [number, number, number];
  /** A listening TCP socket (SO_REUSEADDR + SO_REUSEPORT, close-on-exec) that nothing polls: its fd. */
  listenTcp(host: string, port: number, backlog: number): number;
  /** How async waits sleep in this process: 'io_uring' (kernel futex wait, one hop) or 'threads'. */
  waitBackend: 'io_uring' | 'threads';
}

const SUPPORTED = new Set(['linux-x64', 'linux-arm64']);

/** The package root, where node-gyp-build looks for prebuilds/ and build/ (same depth from src/ and dist/). */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

let binding: NativeBinding | undefined;

/**
 * Loads a libipc addon from its package root (a prebuild from prebuilds/, else build/ from a source build),
 * refusing an unsupported platform with ERR_LIBIPC_UNSUPPORTED_PLATFORM. Shared by every native libipc package.
 */
export function loadAddon<T>(packageName: string, root: string): T {
  const platform = `${process.platform}-${process.arch}`;
  if (!SUPPORTED.has(platform)) {
    throw new UnsupportedPlatformError(
      `${packageName} supports linux-x64 and linux-arm64 (glibc and musl); this is ${platform}. Run on Linux, or open an issue for your platform.`,
    );
  }
  const load = createRequire(import.meta.url)('node-gyp-build') as (dir: string) => T;
  try {
    return load(root);
  } catch (err) {
    // No prebuild for this Node ABI or libc and no source build: say how to get one.
    throw new UnsupportedPlatformError(
      `${packageName} has no native binary for ${platform} (Node ${process.versions.node}, ABI ${process.versions.modules}) in ${root}: ` +
        `build it from source with "npm rebuild ${packageName}" (needs python3, make and g++; set npm_config_nodedir when Node's headers cannot be downloaded). ` +
        `Cause: ${(err as Error).message.split('\n')[0]}`,
    );
  }
}

export function native(): NativeBinding {
  binding ??= loadAddon<NativeBinding>('@libipc/shm', packageRoot);
  return binding;
}
