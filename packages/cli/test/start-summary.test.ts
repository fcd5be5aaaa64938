// The summary `libipc run` prints once its starts settle: counts what runs, names what does not (pure, as a table).
import { describe, expect, it } from 'vitest';
import { restartLine } from '../src/run/session.js';
import { startSummary } from '../src/run/start-summary.js';

const run = (name: string) => ({ name, state: 'running' });

describe('startSummary', () => {
  it.each([
    { what: 'everything runs', units: [run('a'), run('b')], failures: [], ok: true, message: 'all 2 service(s) started; Ctrl-C stops them' },
    {
      what: 'a spawn error and a dependent that waited for it',
      units: [{ name: 'db', state: 'failed', reason: 'spawn ENOENT' }, { name: 'api', state: 'stopped', reason: 'waiting for db, which failed' }, run('cache')],
      failures: [['db', 'cannot spawn: ENOENT'], ['api', 'api cannot start: it depends on db']],
      ok: false,
      message: '1 of 3 service(s) started; not running: db (failed: cannot spawn: ENOENT); api (stopped: waiting for db, which failed)',
    },
    {
      what: 'a unit down with no failed start of its own (its reason is shown)',
      units: [run('a'), { name: 'w.0', state: 'backoff', reason: 'exited with code 1; restarting in 100 ms' }],
      failures: [],
      ok: false,
      message: '1 of 2 service(s) started; not running: w.0 (backoff: exited with code 1; restarting in 100 ms)',
    },
    {
      what: 'a failed first attempt that its policy retried into running',
      units: [run('a')],
      failures: [['a', 'a exited with code 1 before it wrote READY']],
      ok: true,
      message: 'all 1 service(s) started, after a failed first start: a (a exited with code 1 before it wrote READY); Ctrl-C stops them',
    },
  ] as const)('$what', ({ units, failures, ok, message }) => {
    expect(startSummary(units, new Map(failures as ReadonlyArray<[string, string]>))).toEqual({ ok, message });
  });
});

describe('restartLine', () => {
  it.each([
    [{ backoffMs: 200, restarts: 2, reason: 'exited with code 1; restarting in 200 ms' }, 'restarting in 200 ms (restart #3: exited with code 1)'],
    [{ backoffMs: 0, restarts: 1, reason: 'after api went down' }, 'restarting (restart #1: after api went down)'],
    [{ restarts: 0 }, 'restarting (restart #0)'],
  ])('%j', (e, line) => {
    expect(restartLine(e)).toBe(line);
  });
});
