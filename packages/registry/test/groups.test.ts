import { describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/helpers.js';
import { openRegistry, startChild } from './harness.js';

describe('group records', () => {
  it('two processes racing claimPrimary: exactly one wins each epoch, epochs only grow, the record outlives them', async () => {
    const domain = uniqueName('claim');
    const r = openRegistry(domain);
    const racers = ['audio_compute.0', 'audio_compute.1'].map((instance) =>
      startChild('claimer.mjs', [domain, 'audio_compute', instance, '2000']),
    );
    for (const c of racers) await c.line('ready');
    r.register('go', 'go', 'go'); // both read epoch 0 before this: their first claims race for it
    const results = await Promise.all(
      racers.map(async (c) => JSON.parse((await c.line('results', 60_000)).slice('results '.length)) as Array<[number, number | null]>),
    );
    await Promise.all(racers.map((c) => c.exited));

    const wins: Array<{ epoch: number; instance: string }> = [];
    results.forEach((attempts, i) => {
      let last = 0;
      for (const [expected, won] of attempts) {
        expect(expected).toBeGreaterThanOrEqual(last); // epochs a process sees never go back
        last = expected;
        if (won !== null) {
          expect(won).toBe(expected + 1);
          wins.push({ epoch: won, instance: `audio_compute.${i}` });
        }
      }
    });
    const epochs = wins.map((w) => w.epoch).sort((a, b) => a - b);
    const final = epochs.length;
    expect(epochs).toEqual(Array.from({ length: final }, (_, i) => i + 1)); // one winner per epoch, none skipped
    // Every epoch that both tried to claim was won by exactly one of them.
    const tried = results.map((attempts) => new Set(attempts.map(([e]) => e)));
    const both = [...tried[0]!].filter((e) => tried[1]!.has(e));
    expect(both).toContain(0);
    expect(results.map((attempts) => attempts[0]![1]).filter((won) => won === 1)).toHaveLength(1);
    for (const e of both) expect(wins.filter((w) => w.epoch === e + 1)).toHaveLength(1);
    // Both writers have exited; the record stays.
    expect(r.groupState('audio_compute')).toEqual({ epoch: final, primary: wins.find((w) => w.epoch === final)!.instance });
  });
});
