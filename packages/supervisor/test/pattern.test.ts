// Which names a stopAll/statusAll pattern matches (pure, as a table).
import { describe, expect, it } from 'vitest';
import { namePattern } from '../src/pattern.js';

describe('namePattern', () => {
  it.each([
    ['*', 'api', undefined, true],
    ['web-*', 'web-1', undefined, true],
    ['web-*', 'api', undefined, false],
    ['batch', 'batch.0', 'batch', true],
    ['{batch,other}', 'batch.1', 'batch', true],
    ['{batch,other}', 'other', undefined, true],
    ['{batch,other}', 'api.0', 'api', false],
    ['ba?ch', 'batch.3', 'batch', true],
    ['batch.0', 'batch.1', 'batch', false],
    ['batch.1', 'batch.1', 'batch', true],
  ] as const)('%s matches %s (instance of %s): %s', (pattern, name, instanceOf, matches) => {
    expect(namePattern(pattern)(name, instanceOf)).toBe(matches);
  });
});
