// Every export of @libipc/group with thousands of edge-value calls: a coded error or a success, never another error.
import { expect, it } from 'vitest';
import * as group from '../src/index.js';
import { fuzzExports } from '../../../test/api-fuzz.js';

it('fuzzing every export gives a coded error or a success', async () => {
  const report = await fuzzExports(group, { perTarget: 80 });
  expect(report.uncoded).toEqual([]);
  expect(report.calls).toBeGreaterThan(300);
}, 120_000);
