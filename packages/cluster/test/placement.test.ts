// Placement is a pure function of the membership: consistent hashing with bounded loads.
import { describe, expect, it } from 'vitest';
import { createPlacement, PLACEMENT_DEFAULTS } from '../src/index.js';

const names = Array.from({ length: 20_000 }, (_, i) => `daemon-${i}`);
const members = (n: number) => Array.from({ length: n }, (_, i) => `node-${i}`);

function moved(a: { owner(n: string): string | undefined }, b: { owner(n: string): string | undefined }): number {
  let count = 0;
  for (const n of names) if (a.owner(n) !== b.owner(n)) count++;
  return count / names.length;
}

describe('placement', () => {
  it('is the same whatever order the members are given in', async () => {
    const a = await createPlacement(['c', 'a', 'b', 'd']);
    const b = await createPlacement(['d', 'b', 'a', 'c', 'a']);
    expect(a.members).toEqual(['a', 'b', 'c', 'd']);
    expect(names.slice(0, 2000).map((n) => a.owner(n))).toEqual(names.slice(0, 2000).map((n) => b.owner(n)));
  });

  for (const n of [5, 10, 20]) {
    it(`adding a node to ${n} moves about 1/${n + 1} of the names, all of them to the new node`, async () => {
      const before = await createPlacement(members(n));
      const after = await createPlacement(members(n + 1));
      const fraction = moved(before, after);
      expect(fraction).toBeGreaterThan(0.5 / (n + 1));
      expect(fraction).toBeLessThan(1.6 / (n + 1));
      // Most moves go to the newcomer; the rest is the bound pushing overflow along the ring.
      let toNew = 0;
      let total = 0;
      for (const x of names) {
        if (before.owner(x) === after.owner(x)) continue;
        total++;
        if (after.owner(x) === `node-${n}`) toNew++;
      }
      expect(toNew / total).toBeGreaterThan(0.6);
    });
  }

  it('removing a node moves its names and few others', async () => {
    const before = await createPlacement(members(10));
    const after = await createPlacement(members(10).filter((m) => m !== 'node-3'));
    const owned = names.filter((x) => before.owner(x) === 'node-3').length / names.length;
    const fraction = moved(before, after);
    expect(fraction).toBeGreaterThanOrEqual(owned);
    expect(fraction).toBeLessThan(owned * 1.6);
    expect(names.some((x) => after.owner(x) === 'node-3')).toBe(false);
  });

  it('no member holds more partitions than the bound', async () => {
    for (const n of [1, 3, 7, 100]) {
      const p = await createPlacement(members(n));
      expect(p.maxLoad).toBe(Math.ceil((PLACEMENT_DEFAULTS.partitions / n) * PLACEMENT_DEFAULTS.load));
      const loads = [...p.loads().values()];
      expect(loads.reduce((s, l) => s + l, 0)).toBe(PLACEMENT_DEFAULTS.partitions);
      expect(Math.max(...loads)).toBeLessThanOrEqual(p.maxLoad);
    }
  });

  it('has no owner without members, and refuses bad options', async () => {
    expect((await createPlacement([])).owner('x')).toBeUndefined();
    await expect(createPlacement(['a'], { load: 0.5 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    await expect(createPlacement(['a'], { partitions: 0 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    await expect(createPlacement(['a'], { replicationFactor: 1.5 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
  });
});
