// Restart triggers with real processes, real timers and real file watches: a service that grows until it is
// restarted (maxMemory), a per-second cron, and writes to watched and ignored files. Every wait is for an event.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HistoryEvent, Manager } from '../src/index.js';
import { fixture, manager, nextEvent, node, svc, tempDir, until } from './support.js';

const MiB = 2 ** 20;

/** Internal bookkeeping of the triggers, to show nothing is left behind (no timer, no watcher). */
function triggersOf(m: Manager): { memoryTimer: unknown; crons: Map<string, unknown>; watches: Map<string, { watcher?: { emit(e: string, x: unknown): void } }> } {
  return (m as unknown as { triggers: never }).triggers;
}

/** Collects the manager's 'restart' events from now on. */
function restarts(m: Manager): HistoryEvent[] {
  const seen: HistoryEvent[] = [];
  m.on('restart', (e: HistoryEvent) => seen.push(e));
  return seen;
}

describe('maxMemory', () => {
  it('restarts a service whose RSS stays above maxMemory for the grace, trigger memory, not counted against restartLimit', async () => {
    const m = manager();
    const seen = restarts(m);
    // restartLimit 0: a crash would leave it failed; a trigger restart is not a crash.
    await m.start({ name: 'hog', command: node, args: [fixture('hog.mjs'), '--max', '400'], readiness: 'ready', logs: 'ignore', maxMemory: 96 * MiB, memoryGraceMs: 500, restartLimit: 0 });
    const first = m.status('hog').pid!;
    const e = await nextEvent<HistoryEvent>(m, 'restart', (x) => x.name === 'hog');
    expect(e.trigger).toBe('memory');
    expect(e.reason).toMatch(/^memory: RSS \d+ MiB above maxMemory 96 MiB for \d+ s$/);
    await until(m, () => m.status('hog').state === 'running' && m.status('hog').pid !== undefined && m.status('hog').pid !== first, 'a new hog process');
    const st = m.status('hog');
    expect(st.pid).not.toBe(first);
    expect(st.lastRestart).toMatchObject({ trigger: 'memory', reason: e.reason });
    expect(st.lastRestart!.time).toBeInstanceOf(Date);
    expect(st.restarts).toBeGreaterThanOrEqual(1);
    expect(st.contractRestarts).toBe(0);
    expect(seen.every((x) => x.trigger === 'memory')).toBe(true);
  });

  it('leaves a service below maxMemory alone, and samples only while one with maxMemory runs', async () => {
    const m = manager();
    await m.start(svc('small', { maxMemory: 1024 * MiB }));
    await until(m, () => triggersOf(m).memoryTimer !== undefined, 'the memory sampler');
    await m.stop('small');
    await until(m, () => triggersOf(m).memoryTimer === undefined, 'the memory sampler to stop');
    expect(m.status('small').restarts).toBe(0);
  });
});

describe('cronRestart', () => {
  it("restarts each running instance at each fire of '* * * * * *', trigger cron; stopping the service ends the timer", async () => {
    const m = manager();
    const seen = restarts(m);
    await m.start(svc('tick', { cronRestart: '* * * * * *', instances: 2 }));
    const pids = new Set(m.statusAll('tick').map((s) => s.pid));
    await until(m, () => seen.filter((e) => e.name === 'tick.0').length >= 2 && seen.filter((e) => e.name === 'tick.1').length >= 2, 'two cron restarts of each instance');
    expect(seen.every((e) => e.trigger === 'cron' && /^cron: '\* \* \* \* \* \*' fired at /.test(e.reason ?? ''))).toBe(true);
    await until(m, () => m.statusAll('tick').every((s) => s.state === 'running' && !pids.has(s.pid)), 'new processes');
    for (const s of m.statusAll('tick')) {
      expect(s.lastRestart?.trigger).toBe('cron');
      expect(s.contractRestarts).toBe(0);
    }
    await m.stop('tick');
    expect(triggersOf(m).crons.size).toBe(0);
  });
});

describe('watch', () => {
  it('restarts on a write to a watched file and not on a write to an ignored one', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.js'), '1');
    const m = manager();
    const seen = restarts(m);
    const watching = nextEvent<{ service: string; paths: string[] }>(m, 'watching', (e) => e.service === 'web');
    await m.start(svc('web', { watch: { paths: [dir], ignore: ['*.tmp'], debounceMs: 200 } }));
    expect(await watching).toEqual({ service: 'web', paths: [dir] });
    const first = m.status('web').pid;
    // The ignored file first, then a watched one: one restart, naming only the watched file.
    writeFileSync(join(dir, 'x.tmp'), 'ignored');
    mkdirSync(join(dir, 'node_modules'));
    writeFileSync(join(dir, 'node_modules', 'dep.js'), 'ignored by default');
    writeFileSync(join(dir, 'a.js'), '2');
    const e = await nextEvent<HistoryEvent>(m, 'restart', (x) => x.name === 'web');
    expect(e).toMatchObject({ trigger: 'watch', reason: 'watch: a.js changed' });
    await until(m, () => m.status('web').state === 'running' && m.status('web').pid !== first, 'the new web process');
    // A second watched write is the next restart: nothing came in between.
    writeFileSync(join(dir, 'b.js'), '1');
    await until(m, () => seen.length >= 2, 'the second watch restart');
    expect(seen.map((x) => x.reason)).toEqual(['watch: a.js changed', 'watch: b.js changed']);
    expect(m.status('web').lastRestart?.trigger).toBe('watch');
    await m.remove('web');
    expect(triggersOf(m).watches.size).toBe(0);
  });

  it('a watcher error (out of inotify watches) is a coded warning naming the sysctl; the service keeps running', async () => {
    const dir = tempDir();
    const m = manager();
    const watching = nextEvent(m, 'watching');
    await m.start(svc('w', { watch: { paths: [dir] } }));
    await watching;
    const warned = nextEvent<Error & { code: string }>(m, 'warning');
    triggersOf(m).watches.get('w')!.watcher!.emit('error', Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC', syscall: 'watch' }));
    const w = await warned;
    expect(w.code).toBe('ERR_LIBIPC_NO_SPACE');
    expect(w.message).toContain('sysctl fs.inotify.max_user_watches');
    expect(m.status('w').state).toBe('running');
    expect(triggersOf(m).watches.get('w')!.watcher).toBeUndefined();
  });

  it('shutdown closes every watcher and timer', async () => {
    const dir = tempDir();
    const m = manager();
    const watching = nextEvent(m, 'watching');
    await m.start(svc('all', { watch: { paths: [dir] }, cronRestart: '0 3 * * *', maxMemory: 1024 * MiB }));
    await watching;
    await m.shutdown();
    const t = triggersOf(m);
    expect([t.memoryTimer, t.crons.size, t.watches.size]).toEqual([undefined, 0, 0]);
  });
});

