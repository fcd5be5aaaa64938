// Every export of @libipc/registry, and every method of a live registry, with thousands of edge-value calls.
import { expect, it } from 'vitest';
import * as registry from '../src/index.js';
import { fuzzExports, fuzzName } from '../../../test/api-fuzz.js';

it('fuzzing every export gives a coded error or a success', async () => {
  const report = await fuzzExports(registry, {
    perTarget: 80,
    instances: { ServiceRegistry: () => new registry.ServiceRegistry(`${fuzzName()}r`) },
  });
  expect(report.uncoded).toEqual([]);
  expect(report.calls).toBeGreaterThan(1000);
  expect(report.coded).toBeGreaterThan(300);
}, 120_000);
