// Every export of @libipc/shm, called with thousands of combinations of edge values: a coded error or success,
// never another error, never a crash or an unbounded hang.
import { expect, it } from 'vitest';
import * as shm from '../src/index.js';
import { fuzzExports, fuzzName } from '../../../test/api-fuzz.js';

it('fuzzing every export gives a coded error or a success', async () => {
  const mem = shm.SharedMemory.create(`${fuzzName()}m`, 4096);
  const report = await fuzzExports(shm, {
    perTarget: 80,
    instances: {
      SharedMemory: () => mem,
      RobustMutex: () => shm.RobustMutex.init(mem, 64),
      SegmentHeader: () => new shm.SegmentHeader(mem),
      IdentityTable: () => new shm.IdentityTable(mem, 1024, 8),
    },
    skip: {
      loadAddon: 'loads arbitrary paths as addons by design (its platform check is fuzzed through native())',
      'SharedMemory#close': 'closed at the end',
    },
  });
  mem.close();
  shm.SharedMemory.unlink(mem.name);
  expect(report.uncoded).toEqual([]);
  expect(report.calls).toBeGreaterThan(2000);
  expect(report.coded).toBeGreaterThan(500);
}, 120_000);
