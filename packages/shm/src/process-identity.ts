import { describeValue } from './describe.js';
import { InvalidArgumentError } from './errors.js';
import { native } from './native.js';

/** A process is (pid, start time): a zombie is dead, and a reused pid is a different process. */
export interface ProcessIdentity {
  pid: number;
  /** Clock ticks since boot when the process started (/proc/<pid>/stat field 22). */
  startTime: bigint;
}

export function validatePid(pid: unknown): number {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || pid > 2 ** 31 - 1) {
    throw new InvalidArgumentError(`pid must be a positive whole number, got ${describeValue(pid)}`);
  }
  return pid;
}

/** The identity of a running process; undefined when there is no such process or it is a zombie. */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  validatePid(pid);
  const startTime = native().processStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** False for no such process, a zombie, or (with startTime) a pid that now belongs to another process. */
export function isAlive(pid: number, startTime?: bigint): boolean {
  const id = processIdentity(pid);
  return id !== undefined && (startTime === undefined || id.startTime === startTime);
}

let self: ProcessIdentity | undefined;

/** This process's identity. */
export function selfIdentity(): ProcessIdentity {
  self ??= processIdentity(process.pid);
  if (!self) throw new Error('cannot read /proc/self/stat');
  return self;
}
