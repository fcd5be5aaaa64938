import { describeValue } from './describe.js';

/** A message from whatever was passed: errors must be constructible from anything, never throw themselves. */
const text = (v: unknown): string => (typeof v === 'string' ? v : describeValue(v));

/** Every error libipc throws is a LibipcError with a stable `code`; the message says what to do. */
export class LibipcError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(text(message), typeof options === 'object' && options !== null ? options : undefined);
    this.code = typeof code === 'string' && code.startsWith('ERR_LIBIPC_') ? code : 'ERR_LIBIPC_SYSTEM';
    this.name = new.target.name;
  }
}

export class InvalidNameError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_INVALID_NAME', message);
  }
}
export class InvalidArgumentError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_INVALID_ARGUMENT', message);
  }
}
export class NotFoundError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_NOT_FOUND', message);
  }
}
export class ExistsError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_EXISTS', message);
  }
}
export class IncompatibleError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_INCOMPATIBLE', message);
  }
}
export class PermissionError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_PERMISSION', message);
  }
}
export class TimeoutError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_TIMEOUT', message);
  }
}
export class ClosedError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_CLOSED', message);
  }
}
export class TooLargeError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_TOO_LARGE', message);
  }
}
export class LaggedError extends LibipcError {
  /** How many messages the receiver missed. */
  readonly missed: number;
  constructor(missed: number, message?: string) {
    super(
      'ERR_LIBIPC_LAGGED',
      message ??
        `this receiver fell behind and missed ${text(missed)} message(s); it continues from the oldest message still held (receive faster, or use a larger capacity)`,
    );
    this.missed = typeof missed === 'number' ? missed : Number.NaN;
  }
}
export class BadMessageError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_BAD_MESSAGE', message);
  }
}
export class RegistryFullError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_REGISTRY_FULL', message);
  }
}
export class SpawnError extends LibipcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LIBIPC_SPAWN', message, options);
  }
}
export class ExitedEarlyError extends LibipcError {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderrTail: string | undefined;
  constructor(message: string, details: { exitCode: number | null; signal: string | null; stderrTail?: string }) {
    super('ERR_LIBIPC_EXITED_EARLY', message);
    const d = (typeof details === 'object' && details !== null ? details : {}) as Partial<typeof details>;
    this.exitCode = d.exitCode ?? null;
    this.signal = d.signal ?? null;
    this.stderrTail = d.stderrTail;
  }
}
export class IllegalStateError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_ILLEGAL_STATE', message);
  }
}
export class UnsupportedPlatformError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_UNSUPPORTED_PLATFORM', message);
  }
}
/** An optional capability is missing here (e.g. SQLite: neither node:sqlite nor better-sqlite3); the message names the ways out. */
export class UnsupportedError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_UNSUPPORTED', message);
  }
}
export class NoSpaceError extends LibipcError {
  constructor(message: string) {
    super('ERR_LIBIPC_NO_SPACE', message);
  }
}
/** Any other OS error: `errno` (e.g. 'EMFILE') and `syscall` say which. */
export class SystemError extends LibipcError {
  readonly errno: string;
  readonly syscall: string;
  constructor(message: string, details: { errno: string; syscall: string; cause?: unknown }) {
    const d = (typeof details === 'object' && details !== null ? details : {}) as Partial<typeof details>;
    super('ERR_LIBIPC_SYSTEM', message, { cause: d.cause });
    this.errno = text(d.errno ?? 'EUNKNOWN');
    this.syscall = text(d.syscall ?? 'unknown');
  }
}
/** A dependency would close a cycle; `cycle` lists it, first name repeated at the end (a → b → a). */
export class CycleError extends LibipcError {
  readonly cycle: string[];
  constructor(cycle: string[], message?: string) {
    const names = Array.isArray(cycle) ? cycle.map(text) : [text(cycle)];
    super('ERR_LIBIPC_CYCLE', message ?? `dependency cycle: ${names.join(' → ')}; remove one of these dependencies`);
    this.cycle = names;
  }
}
export class ClusterUnavailableError extends LibipcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LIBIPC_CLUSTER_UNAVAILABLE', message, options);
  }
}
