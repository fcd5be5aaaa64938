// The options of a ServiceRegistry and of its calls, and the checks of their arguments.
import {
  describeValue,
  InvalidArgumentError,
  MAX_TIMER_MS,
  option,
  processIdentity,
  type ProcessIdentity,
  selfIdentity,
  validateName,
} from '@libipc/shm';
import type { ServiceEntry } from './entry.js';
import { MAX_CAPACITY, META_MAX_BYTES } from './layout.js';

export interface RegistryOptions {
  /** Entries the domain holds; fixed when the segment is created (an opener uses the stored one). Default 32. */
  capacity?: number;
  /** Bound on waiting for the registry lock; a stopped holder makes operations fail with ERR_LIBIPC_TIMEOUT. Default 1000. */
  lockTimeoutMs?: number;
  /** Other uids whose registry segment this process may join (default: only its own uid's; docs/security.md). */
  allowUsers?: number[];
}

export interface RegisterOptions {
  /** Register another running process (e.g. a child you spawned); default this process. */
  pid?: number;
  /** Free text for the service's users, at most 256 UTF-8 bytes. */
  meta?: string;
}

export interface WaitForOptions {
  /** Resolve with undefined after this long (default: wait until registered or aborted). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WaitForDeathOptions {
  /** Reject with ERR_LIBIPC_TIMEOUT when the process still lives after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Keep the process alive while waiting (default true). */
  ref?: boolean;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 1000;

const uids = option.custom<number[]>(
  (v) => Array.isArray(v) && v.length <= 1024 && v.every((u) => Number.isInteger(u) && u >= 0 && u <= 2 ** 32 - 1),
  'an array of uids (whole numbers)',
);
export const REGISTRY_OPTIONS = {
  capacity: option.int(1, MAX_CAPACITY),
  lockTimeoutMs: option.ms(0, 60_000),
  allowUsers: uids,
};
export const REGISTER_OPTIONS = {
  pid: option.int(1, 2 ** 31 - 1).describe('a process id (a positive whole number)'),
  meta: option.string(META_MAX_BYTES * 4),
};
export const WAIT_FOR_OPTIONS = { timeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }), signal: option.signal() };
export const WATCH_OPTIONS = { signal: option.signal() };
export const WAIT_FOR_DEATH_OPTIONS = {
  timeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }),
  signal: option.signal(),
  ref: option.boolean(),
};

/** An entry argument: a ServiceEntry from find/list/waitFor (its name and identity are what count). */
export function checkEntry(entry: unknown): ServiceEntry {
  const e = entry as ServiceEntry;
  if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || !Number.isInteger(e.pid) || typeof e.startTime !== 'bigint') {
    throw new InvalidArgumentError(`entry must be a ServiceEntry returned by find, list or waitFor, got ${describeValue(entry)}`);
  }
  validateName(e.name, 'entry name');
  if (e.pid < 1) throw new InvalidArgumentError(`entry.pid must be a positive whole number, got ${e.pid}`);
  return e;
}

export function validateCapacity(capacity: unknown): number {
  if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
    throw new InvalidArgumentError(`capacity must be a whole number from 1 to ${MAX_CAPACITY}, got ${String(capacity)}`);
  }
  return capacity;
}

export function encodeMeta(meta: unknown): Buffer | undefined {
  if (meta === undefined) return undefined;
  if (typeof meta !== 'string') throw new InvalidArgumentError(`meta must be a string, got ${typeof meta}`);
  const bytes = Buffer.from(meta, 'utf8');
  if (bytes.length > META_MAX_BYTES) {
    throw new InvalidArgumentError(
      `meta is ${bytes.length} bytes of UTF-8, the most an entry holds is ${META_MAX_BYTES}; store a shorter string (e.g. a path or key to the rest)`,
    );
  }
  return bytes;
}

export function identityOf(pid: unknown): ProcessIdentity {
  if (pid === undefined) return selfIdentity();
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || pid > 2 ** 31 - 1) {
    throw new InvalidArgumentError(`pid must be a positive whole number, got ${String(pid)}`);
  }
  const id = processIdentity(pid);
  if (!id) throw new InvalidArgumentError(`pid ${pid} is not a running process (or is a zombie); register a live process`);
  return id;
}

export function validatePrefix(prefix: unknown): string {
  if (prefix === '') return prefix;
  validateName(prefix, 'prefix');
  return prefix;
}
