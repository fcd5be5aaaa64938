// A reload's decisions as tables: which instances, how many at once, which next, swap or drop. Pure: no process.
import { describe, expect, it } from 'vitest';
import { type ReloadStep, type ReloadUnitView, type SlotPhase, type SwapVerdict, type SwapView, nextReloadStep, reloadBatch, reloadScope, swapVerdict } from '../src/reload-plan.js';

const unit = (name: string, state: ReloadUnitView['state'], desired: ReloadUnitView['desired'] = 'running', stopping = false): ReloadUnitView => ({ name, state, desired, stopping });

describe('reloadScope', () => {
  it.each<[string, ReloadUnitView[], ReturnType<typeof reloadScope>]>([
    ['a stopped service is started', [unit('w.0', 'stopped', 'stopped'), unit('w.1', 'stopped', 'stopped')], { mode: 'start' }],
    ['failed and exited ones that were stopped: started too', [unit('w.0', 'failed', 'stopped'), unit('w.1', 'exited', 'stopped')], { mode: 'start' }],
    ['all running: all replaced, in order', [unit('w.0', 'running'), unit('w.1', 'running'), unit('w.2', 'running')], { mode: 'replace', replace: ['w.0', 'w.1', 'w.2'], skipped: [] }],
    [
      'starting and backoff ones are left (they start from the current spec anyway)',
      [unit('w.0', 'running'), unit('w.1', 'starting'), unit('w.2', 'backoff')],
      {
        mode: 'replace',
        replace: ['w.0'],
        skipped: [
          { name: 'w.1', reason: 'starting: its next process starts from the current spec anyway' },
          { name: 'w.2', reason: 'backoff: its next process starts from the current spec anyway' },
        ],
      },
    ],
    ['one being stopped is left', [unit('w.0', 'running', 'running', true), unit('w.1', 'running')], { mode: 'replace', replace: ['w.1'], skipped: [{ name: 'w.0', reason: 'running: it is being stopped' }] }],
    ['a failed one of a running service is left: start it', [unit('w.0', 'failed'), unit('w.1', 'running')], { mode: 'replace', replace: ['w.1'], skipped: [{ name: 'w.0', reason: 'failed: not running; start it' }] }],
  ])('%s', (_, units, expected) => {
    expect(reloadScope(units)).toEqual(expected);
  });
});

describe('reloadBatch: N − minAvailable at once, at least 1, at most N', () => {
  it.each([
    [3, undefined, 1],
    [3, 2, 1],
    [3, 1, 2],
    [3, 0, 3],
    [3, 3, 1],
    [3, 10, 1],
    [1, undefined, 1],
    [1, 0, 1],
    [0, undefined, 1],
  ])('N=%i minAvailable=%s → %i', (n, min, expected) => {
    expect(reloadBatch(n, min)).toBe(expected);
  });
});

describe('nextReloadStep', () => {
  const s = (spec: string) =>
    spec.split(' ').map((p, i) => ({ name: `w.${i}`, phase: ({ '.': 'pending', r: 'replacing', o: 'stopping-old', d: 'done', f: 'failed' } as Record<string, SlotPhase>)[p]! }));
  it.each<[string, string, number, ReloadStep]>([
    ['first instance first', '. . .', 1, { kind: 'replace', names: ['w.0'] }],
    ['one at a time: wait while a replacement starts', 'r . .', 1, { kind: 'wait' }],
    ['an old process still stopping holds its place in the batch', 'o . .', 1, { kind: 'wait' }],
    ['the next once the previous is done', 'd . .', 1, { kind: 'replace', names: ['w.1'] }],
    ['batch 2: two at once', '. . .', 2, { kind: 'replace', names: ['w.0', 'w.1'] }],
    ['batch 2: fill the free place', 'd r .', 2, { kind: 'replace', names: ['w.2'] }],
    ['batch larger than what is left', 'd d .', 3, { kind: 'replace', names: ['w.2'] }],
    ['the last one in flight', 'd d o', 1, { kind: 'wait' }],
    ['all done', 'd d d', 1, { kind: 'done' }],
    ['a failure: nothing new starts, wait for what is in flight', 'f r .', 2, { kind: 'wait' }],
    ['a failure with nothing in flight: stop there', 'd f .', 1, { kind: 'abort', failed: ['w.1'] }],
    ['two failures: both named', 'f f .', 2, { kind: 'abort', failed: ['w.0', 'w.1'] }],
    ['no instance to replace', '', 1, { kind: 'done' }],
  ])('%s (%s, batch %i)', (_, phases, batch, expected) => {
    expect(nextReloadStep(phases === '' ? [] : s(phases), batch)).toEqual(expected);
  });
});

describe('swapVerdict: once the replacement is ready', () => {
  const base: SwapView = { state: 'running', desired: 'running', stopping: false, removing: false, generation: 4, closing: false };
  it.each<[string, Partial<SwapView>, SwapVerdict]>([
    ['unchanged: swap', {}, 'swap'],
    ['crashed and restarted meanwhile: it runs the current spec already', { generation: 5 }, 'restarted'],
    ['restarted and still starting: overtaken', { generation: 5, state: 'starting' }, 'overtaken'],
    ['crashed, waiting in backoff', { state: 'backoff' }, 'overtaken'],
    ['stop() asked meanwhile', { desired: 'stopped' }, 'overtaken'],
    ['being stopped', { stopping: true }, 'overtaken'],
    ['removed', { removing: true }, 'overtaken'],
    ['the manager shuts down', { closing: true }, 'overtaken'],
  ])('%s', (_, change, expected) => {
    expect(swapVerdict({ ...base, ...change }, 4)).toBe(expected);
  });
});
