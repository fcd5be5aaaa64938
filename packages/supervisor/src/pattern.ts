import picomatch from 'picomatch';
import { InvalidArgumentError, describeValue } from '@libipc/shm';

// Glob characters picomatch understands, plus the characters of a name.
const PATTERN_RULE = /^[A-Za-z0-9._\-*?[\]!{}(),^|+@]{1,255}$/;

/**
 * A name matcher for a glob (`web-*`, `*-worker-?`, `*`), matched by picomatch. A pattern that names a
 * service started with `instances` also matches its instances (`web` matches `web.0`, `web.1`, …).
 */
export function namePattern(pattern: unknown, what = 'pattern'): (name: string, instanceOf?: string) => boolean {
  if (typeof pattern !== 'string' || !PATTERN_RULE.test(pattern)) {
    throw new InvalidArgumentError(
      `${what} must be a glob of 1-255 characters over names ([A-Za-z0-9._-]) and glob syntax (* ? [ ] { } !), e.g. 'web-*'; got ${describeValue(pattern)}`,
    );
  }
  let isMatch: (s: string) => boolean;
  try {
    isMatch = picomatch(pattern, { dot: true, strictBrackets: true });
  } catch (err) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(pattern)} is not a valid glob: ${(err as Error).message}`);
  }
  // `instanceOf`: the service name when `name` is one of its instances.
  // A pattern that matches the service's name matches its instances too ('{batch,other}' → batch.0, batch.1).
  return (name, instanceOf) => isMatch(name) || (instanceOf !== undefined && isMatch(instanceOf));
}
