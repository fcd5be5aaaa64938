// Every export of @libipc/process with thousands of edge-value calls: a coded error or a success, never another
// error. (No edge value names a real executable, so nothing is actually started.)
import { expect, it } from 'vitest';
import * as proc from '../src/index.js';
import { fuzzExports } from '../../../test/api-fuzz.js';

it('fuzzing every export gives a coded error or a success', async () => {
  const report = await fuzzExports(proc, { perTarget: 80 });
  expect(report.uncoded).toEqual([]);
  expect(report.calls).toBeGreaterThan(500);
}, 120_000);
