// The restart triggers' decisions as tables: memory samples → verdict, cron expression → next fire, paths →
// ignored or not, changes → when to restart, units → which to restart. Pure: no process, no timer, no watcher.
import { describe, expect, it } from 'vitest';
import { checkCron, nextCronFire } from '../src/cron-schedule.js';
import { type MemorySample, memoryVerdict, pruneSamples } from '../src/memory-limit.js';
import { validateSpec } from '../src/spec.js';
import { type TargetView, triggerActive, triggerTargets } from '../src/trigger-targets.js';
import { addChange, debounceDelay, describeChanges, ignoreMatcher, watchError, watchIgnores } from '../src/watch-rules.js';

const MiB = 2 ** 20;
const s = (at: number, mib: number): MemorySample => ({ at, rss: mib * MiB });

describe('memoryVerdict(samples, limit, graceMs, now)', () => {
  const limit = 256 * MiB;
  it.each([
    ['no samples', [], 3000, 5000, { action: 'ok' }],
    ['below the limit', [s(0, 100), s(1000, 200)], 3000, 1000, { action: 'ok' }],
    ['at the limit is not above it', [s(0, 256)], 0, 0, { action: 'ok' }],
    ['above, not yet for the grace', [s(0, 300), s(1000, 301)], 3000, 2000, { action: 'over', overForMs: 2000 }],
    ['above for the grace', [s(0, 300), s(1000, 301), s(3000, 301)], 3000, 3000, { action: 'restart', reason: 'memory: RSS 301 MiB above maxMemory 256 MiB for 3 s' }],
    ['a dip below restarts the count', [s(0, 300), s(1000, 100), s(2000, 300), s(4000, 300)], 3000, 4000, { action: 'over', overForMs: 2000 }],
    ['grace 0: the first sample above', [s(500, 257)], 0, 500, { action: 'restart', reason: 'memory: RSS 257 MiB above maxMemory 256 MiB for 0 s' }],
    ['the last sample below: ok', [s(0, 300), s(5000, 100)], 3000, 5000, { action: 'ok' }],
  ] as Array<[string, MemorySample[], number, number, unknown]>)('%s', (_what, samples, grace, now, want) => {
    expect(memoryVerdict(samples, limit, grace, now)).toEqual(want);
  });

  it('pruneSamples keeps only the trailing run above the limit (bounded memory)', () => {
    expect(pruneSamples([s(0, 300), s(1, 100), s(2, 300), s(3, 400)], limit)).toEqual([s(2, 300), s(3, 400)]);
    expect(pruneSamples([s(0, 300), s(1, 100)], limit)).toEqual([]);
  });
});

describe('nextCronFire(expr, from)', () => {
  const from = new Date('2026-01-01T00:00:00.500Z');
  it.each([
    ['* * * * * *', '2026-01-01T00:00:01.000Z'],
    ['*/5 * * * *', '2026-01-01T00:05:00.000Z'],
    ['0 3 * * *', '2026-01-01T03:00:00.000Z'],
    ['30 */10 * * * *', '2026-01-01T00:00:30.000Z'],
    ['@daily', '2026-01-02T00:00:00.000Z'],
    ['0 0 30 2 *', undefined],
  ])('%s → %s', (expr, want) => {
    expect(nextCronFire(expr, from)?.toISOString()).toBe(want);
  });

  it('is strictly after `from` (a fire at `from` is not fired twice)', () => {
    const at = new Date('2026-01-01T00:00:01.000Z');
    expect(nextCronFire('* * * * * *', at)?.toISOString()).toBe('2026-01-01T00:00:02.000Z');
  });

  it.each(['bad', '* * * *', '* * * * * * *', '61 * * * *', '0 0 30 2 *'])('checkCron refuses %j naming the field', (expr) => {
    expect(() => checkCron(expr, 'x: cronRestart')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringContaining('cronRestart') }));
  });
});

describe('watch ignores', () => {
  const root = '/srv/app';
  const ignored = ignoreMatcher([root, '/etc/app.conf'], watchIgnores(['*.tmp', 'src/gen/**', '/srv/app/data'], '/srv/app/logs', ['/srv/app/services.db']));
  it.each([
    ['/srv/app/index.js', false],
    ['/srv/app/src/lib/a.js', false],
    ['/srv/app/node_modules', true],
    ['/srv/app/node_modules/x/index.js', true],
    ['/srv/app/src/node_modules/y.js', true],
    ['/srv/app/.git/HEAD', true],
    ['/srv/app/.github/workflows/ci.yml', false],
    ['/srv/app/logs/app.out.log', true],
    ['/srv/app/logs', true],
    ['/srv/app/logfile.js', false],
    ['/srv/app/services.db', true],
    ['/srv/app/services.db-wal', true],
    ['/srv/app/a.tmp', true],
    ['/srv/app/src/gen/x.js', true],
    ['/srv/app/src/gen', true],
    ['/srv/app/gen/x.js', false],
    ['/srv/app/data/file', true],
    ['/srv/app/database.js', false],
    ['/etc/app.conf', false],
  ])('%s → ignored %s', (path, want) => {
    expect(ignored(path)).toBe(want);
  });

  it('a watched root inside node_modules is still watched (segments count from the root)', () => {
    const m = ignoreMatcher(['/x/node_modules/pkg'], watchIgnores(undefined, undefined, []));
    expect(m('/x/node_modules/pkg/index.js')).toBe(false);
    expect(m('/x/node_modules/pkg/node_modules/dep.js')).toBe(true);
  });
});

describe('watch debounce', () => {
  it.each([
    // changes at these times (ms), debounce, now → ms still to wait (<= 0: restart now)
    [[0], 500, 0, 500],
    [[0], 500, 500, 0],
    [[0, 300], 500, 500, 300],
    [[0, 300, 700], 500, 1200, 0],
    // a burst that never pauses restarts 5 s (or 10 debounce periods) after its first change
    [[0, 400, 800, 1200, 1600, 2000, 2400, 2800, 3200, 3600, 4000, 4400, 4800], 500, 4800, 200],
    [[0, 1000, 2000, 19_000], 2000, 19_000, 1000],
  ])('changes %j, debounce %i, at %i → wait %i', (times, debounce, now, want) => {
    let p: ReturnType<typeof addChange> | undefined;
    for (const t of times) p = addChange(p, `/a/f${t}`, t);
    expect(debounceDelay(p!, debounce, now)).toBe(want);
  });

  it('the reason names the changed paths relative to their root, and counts the rest', () => {
    let p = addChange(undefined, '/srv/app/a.js', 0);
    expect(describeChanges(p, ['/srv/app'])).toBe('watch: a.js changed');
    p = addChange(p, '/srv/app/a.js', 1);
    for (const f of ['b.js', 'c/d.js', 'e.js', 'f.js']) p = addChange(p, `/srv/app/${f}`, 2);
    expect(describeChanges(p, ['/srv/app'])).toBe('watch: a.js, b.js, c/d.js and 2 more changed');
    expect(describeChanges(addChange(undefined, '/etc/app.conf', 0), ['/etc/app.conf'])).toBe('watch: /etc/app.conf changed');
  });
});

describe('watchError', () => {
  it.each([
    ['ENOSPC', 'ERR_LIBIPC_NO_SPACE', 'sysctl fs.inotify.max_user_watches'],
    ['EMFILE', 'ERR_LIBIPC_SYSTEM', 'sysctl fs.inotify.max_user_instances'],
    ['EACCES', 'ERR_LIBIPC_SYSTEM', 'keeps running'],
  ])('%s → %s naming %s', (code, want, text) => {
    const err = Object.assign(new Error(`${code}: boom`), { code, syscall: 'watch' });
    const e = watchError(err, 'api');
    expect(e.code).toBe(want);
    expect(e.message).toContain(text);
    expect(e.message).toContain('api');
  });
});

describe('triggerTargets(units, kind)', () => {
  const u = (name: string, state: TargetView['state'], extra: Partial<TargetView> = {}): TargetView => ({ name, state, desired: 'running', bounce: false, stopping: false, ...extra });
  const units = [
    u('running', 'running'),
    u('starting', 'starting'),
    u('failed', 'failed'),
    u('exited', 'exited'),
    u('backoff', 'backoff'),
    u('stopped', 'stopped'),
    u('bouncing', 'running', { bounce: true }),
    u('stopping', 'running', { stopping: true }),
    u('unwanted', 'running', { desired: 'stopped' }),
  ];
  it.each([
    ['cron', ['running']],
    ['memory', ['running', 'starting']],
    ['watch', ['running', 'starting', 'failed', 'exited']],
  ] as const)('%s restarts %j', (kind, want) => {
    expect(triggerTargets(units, kind).map((x) => x.name)).toEqual(want);
  });

  it('a service keeps its timer or watcher while any unit is wanted running', () => {
    expect(triggerActive([u('a', 'failed'), u('b', 'stopped', { desired: 'stopped' })])).toBe(true);
    expect(triggerActive([u('a', 'running', { desired: 'stopped' })])).toBe(false);
  });
});

describe('validateSpec: trigger fields', () => {
  const base = { name: 'api', command: 'node' };
  it('keeps good values', () => {
    expect(
      validateSpec({ ...base, maxMemory: 300 * MiB, memoryGraceMs: 0, cronRestart: '0 3 * * *', watch: { paths: ['/srv/app', '/srv/app'], ignore: ['*.log'], debounceMs: 100 } }),
    ).toEqual({ ...base, maxMemory: 300 * MiB, memoryGraceMs: 0, cronRestart: '0 3 * * *', watch: { paths: ['/srv/app'], ignore: ['*.log'], debounceMs: 100 } });
  });
  it.each([
    [{ maxMemory: 1000 }, 'maxMemory'],
    [{ maxMemory: '300M' }, 'maxMemory'],
    [{ maxMemory: 1.5 }, 'maxMemory'],
    [{ memoryGraceMs: -1 }, 'memoryGraceMs'],
    [{ cronRestart: 'every day' }, 'cronRestart'],
    [{ cronRestart: '* * * * * * *' }, 'cronRestart'],
    [{ cronRestart: 5 }, 'cronRestart'],
    [{ watch: true }, 'watch'],
    [{ watch: { paths: ['relative/src'] } }, 'watch'],
    [{ watch: { paths: [] } }, 'watch'],
    [{ watch: { paths: ['/a'], debounce: 5 } }, 'watch'],
    [{ watch: { paths: ['/a'], ignore: 'x' } }, 'watch'],
  ])('refuses %j naming %s', (extra, field) => {
    expect(() => validateSpec({ ...base, ...extra })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringContaining(field) }));
  });
});
