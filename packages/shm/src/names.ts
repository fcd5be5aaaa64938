import { InvalidNameError } from './errors.js';
import { describeValue } from './describe.js';

const NAME_RULE = /^[A-Za-z0-9._-]{1,63}$/;
const KIND_RULE = /^[a-z][a-z0-9]{0,15}$/;

/**
 * The one name rule of libipc, for domains, services, channels and segments:
 * 1–63 bytes of [A-Za-z0-9._-]. Never truncated or rewritten: anything else throws ERR_LIBIPC_INVALID_NAME.
 */
export function validateName(name: unknown, what: unknown = 'name'): asserts name is string {
  // `what` only labels the message; a caller passing anything else must still get the coded error.
  if (typeof what !== 'string') what = 'name';
  if (typeof name !== 'string') {
    throw new InvalidNameError(`${what} must be a string of 1-63 characters from [A-Za-z0-9._-], got ${describeValue(name)}`);
  }
  if (name.length > 63) {
    const size = name.length > 4096 ? `${name.length} characters` : `${Buffer.byteLength(name)} bytes`;
    throw new InvalidNameError(`${what} is not valid: it is ${size} long. Use 1-63 characters from [A-Za-z0-9._-] (no '/', no spaces).`);
  }
  if (!NAME_RULE.test(name)) {
    const why =
      name.length === 0
        ? 'it is empty'
        : Buffer.byteLength(name) > 63
          ? `it is ${Buffer.byteLength(name)} bytes long`
          : 'it contains characters outside [A-Za-z0-9._-]';
    throw new InvalidNameError(
      `${what} ${JSON.stringify(name)} is not valid: ${why}. Use 1-63 characters from [A-Za-z0-9._-] (no '/', no spaces).`,
    );
  }
}

/** A segment kind: a short lowercase word, e.g. 'registry', 'chan', 'shm'. */
export function validateKind(kind: unknown): asserts kind is string {
  if (typeof kind !== 'string' || kind.length > 16 || !KIND_RULE.test(kind)) {
    throw new InvalidNameError(
      `segment kind ${describeValue(kind)} is not valid: use 1-16 lowercase letters or digits, starting with a letter`,
    );
  }
}

/** The POSIX object name of a libipc segment: /libipc.<kind>.<name>, listed in /dev/shm without the slash. */
export function objectName(kind: string, name: string): string {
  validateKind(kind);
  validateName(name);
  return `/libipc.${kind}.${name}`;
}
