// Every export of @libipc/typed-channel, and every method of live channels, with thousands of edge-value calls.
import { expect, it } from 'vitest';
import * as tc from '../src/index.js';
import { fuzzExports, fuzzName } from '../../../test/api-fuzz.js';
import { Sample } from './generated/sample_generated.js';

it('fuzzing every export gives a coded error or a success', async () => {
  const report = await fuzzExports(tc, {
    perTarget: 60,
    instances: {
      Channel: () => new tc.Channel(`${fuzzName()}c`, { mode: 'receiver' }),
      Route: () => new tc.Route(`${fuzzName()}r`),
      TypedChannel: () => new tc.TypedChannel(`${fuzzName()}t`, Sample, { mode: 'receiver' }),
    },
  });
  expect(report.uncoded).toEqual([]);
  expect(report.calls).toBeGreaterThan(500);
}, 120_000);
