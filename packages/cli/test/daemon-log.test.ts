import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { collapse, daemonLogger, type RepeatState } from '../src/daemon/daemon-log.js';

describe('the daemon log', () => {
  it.each([
    { name: 'a new line is written', steps: [['a', 0]], out: ['a'] },
    { name: 'the same line within the window is held back', steps: [['a', 0], ['a', 100], ['a', 9_999]], out: ['a', undefined, undefined] },
    { name: 'after the window it is written with how many were held', steps: [['a', 0], ['a', 100], ['a', 200], ['a', 10_000]], out: ['a', undefined, undefined, 'a (and 2 more like it in the last 10 s)'] },
    { name: 'after a quiet window it is written plain', steps: [['a', 0], ['a', 20_000]], out: ['a', 'a'] },
    { name: 'other lines are not held back by it', steps: [['a', 0], ['b', 1], ['a', 2], ['b', 3]], out: ['a', 'b', undefined, undefined] },
  ])('$name', ({ steps, out }) => {
    const state: RepeatState = { seen: new Map() };
    expect(steps.map(([line, at]) => collapse(state, line as string, at as number))).toEqual(out);
  });

  it('a stream whose writes fail (a full disk) never throws; the next line that gets through says how many were lost', () => {
    const written: string[] = [];
    let full = true;
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (full) cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
        else {
          written.push(chunk.toString());
          cb();
        }
      },
    });
    let t = 0;
    const log = daemonLogger(stream, () => new Date(t++ * 1000));
    expect(() => log('one')).not.toThrow();
    expect(() => log('two')).not.toThrow();
    expect(written).toEqual([]);
  });
});
