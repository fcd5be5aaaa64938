import { describe, expect, it } from 'vitest';
import { DependencyGraph, type HistoryEvent } from '../src/index.js';
import { manager, nextEvent, svc, until } from './support.js';

// Fast restarts so that the cascade tests take a few hundred ms.
const quick = { policy: 'always' as const, backoff: { initialMs: 20, factor: 1, maxMs: 20 }, maxRestarts: 100, windowMs: 60_000 };

/** A ← B, A ← C, B ← C: the seed's scenario (and a diamond). */
async function abc(limit?: number) {
  const m = manager();
  const extra = { restart: quick, ...(limit === undefined ? {} : { restartLimit: limit }) };
  await m.start(svc('a', extra));
  await m.start(svc('b', { ...extra, dependsOn: ['a'] }));
  await m.start(svc('c', { ...extra, dependsOn: ['a', 'b'] }));
  return m;
}

function collect(m: ReturnType<typeof manager>, type: string): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  m.on(type, (e: HistoryEvent) => out.push(e));
  return out;
}

describe('dependencies', () => {
  it('starts dependencies first, and refuses an unknown one', async () => {
    const m = manager();
    const started = collect(m, 'ready');
    await m.start(svc('db'));
    await m.start(svc('api', { dependsOn: ['db'] }));
    await m.stop('db');
    // Stopping db stopped api first; starting api starts db first again.
    expect(m.status('api').state).toBe('stopped');
    started.length = 0;
    await m.start('api');
    expect(started.map((e) => e.name)).toEqual(['db', 'api']);
    await expect(m.start(svc('web', { dependsOn: ['nope'] }))).rejects.toMatchObject({ code: 'ERR_LIBIPC_NOT_FOUND', message: expect.stringContaining('nope') });
  });

  it('stops dependents first', async () => {
    const m = await abc();
    const stops = collect(m, 'stop');
    await m.stop('a');
    expect(stops.map((e) => e.name)).toEqual(['c', 'b', 'a']);
    expect(m.count()).toBe(0);
  });

  it('after SIGKILL of A restarts A, then B, then C, each counted', async () => {
    const m = await abc();
    const before = Object.fromEntries(m.statusAll().map((s) => [s.name, s.pid]));
    const ready = collect(m, 'ready');
    const all = until(m, () => ready.length === 3, 'three services ready again');
    process.kill(before.a!, 'SIGKILL');
    await all;
    expect(ready.map((e) => e.name)).toEqual(['a', 'b', 'c']);
    for (const s of m.statusAll()) {
      expect(s.state).toBe('running');
      expect(s.restarts).toBe(1);
      expect(s.pid).not.toBe(before[s.name]);
    }
    expect(m.status('a').lastExit).toMatchObject({ signal: 'SIGKILL', time: expect.any(Date) });
  });

  it('with restartLimit 1 the second crash leaves A failed and B, C stopped with the reason', async () => {
    const m = await abc(1);
    const again = until(m, () => m.statusAll().every((s) => s.state === 'running' && s.restarts === 1), 'first cascade');
    process.kill(m.status('a').pid!, 'SIGKILL');
    await again;
    const failed = nextEvent<HistoryEvent>(m, 'failed');
    process.kill(m.status('a').pid!, 'SIGKILL');
    expect((await failed).name).toBe('a');
    await until(m, () => m.status('b').state === 'stopped' && m.status('c').state === 'stopped', 'b and c stopped');
    expect(m.status('a')).toMatchObject({ state: 'failed', restarts: 1, restartLimit: 1, reason: expect.stringMatching(/restart limit 1/) });
    for (const n of ['b', 'c']) {
      expect(m.status(n).reason).toMatch(/waiting for a, which failed/);
      expect(m.status(n).pid).toBeUndefined();
    }
    // Starting A again is a new life: B and C follow it.
    await m.start('a');
    await until(m, () => m.statusAll().every((s) => s.state === 'running'), 'all running after a fresh start');
  });

  it('a dependency removed stops the cascade', async () => {
    const m = await abc();
    m.removeDependency('b', 'a');
    m.removeDependency('c', 'a');
    const bPid = m.status('b').pid;
    const aBack = nextEvent<HistoryEvent>(m, 'ready', (e) => e.name === 'a');
    const stops = collect(m, 'stop');
    process.kill(m.status('a').pid!, 'SIGKILL');
    await aBack;
    expect(stops).toEqual([]);
    expect(m.status('b')).toMatchObject({ state: 'running', pid: bPid, restarts: 0 });
    expect(m.status('c').restarts).toBe(0);
    expect(m.status('b').dependsOn).toEqual([]);
    expect(m.status('c').dependsOn).toEqual(['b']);
  });

  it('refuses a cycle and names it, at addDependency and at start', async () => {
    const m = await abc();
    expect(() => m.addDependency('a', 'c')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_CYCLE', message: expect.stringContaining('a → c → ') }));
    try {
      m.addDependency('a', 'b');
    } catch (err) {
      expect((err as { cycle: string[] }).cycle).toEqual(['a', 'b', 'a']);
      expect((err as Error).message).toContain('a → b → a');
    }
    expect(() => m.addDependency('a', 'a')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_CYCLE' }));
    await m.stop('a');
    await expect(m.start(svc('a', { dependsOn: ['c'] }))).rejects.toMatchObject({ code: 'ERR_LIBIPC_CYCLE', message: expect.stringContaining('a → c → ') });
    // Nothing changed: a still has no dependencies.
    expect(m.status('a').dependsOn).toEqual([]);
    expect(() => m.addDependency('a', 'zzz')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
  });
});

describe('DependencyGraph', () => {
  it('orders a diamond topologically and finds cycles', () => {
    const g = new DependencyGraph();
    for (const n of ['a', 'b', 'c', 'd']) g.addNode(n);
    g.addEdge('b', 'a');
    g.addEdge('c', 'a');
    g.addEdge('c', 'b');
    g.addEdge('d', 'c');
    expect(g.topologicalOrder()).toEqual(['a', 'b', 'c', 'd']);
    expect(g.topologicalOrder(['c', 'b'])).toEqual(['b', 'c']);
    expect([...g.dependentClosure(['b'])].sort()).toEqual(['b', 'c', 'd']);
    expect(g.cycleThrough('a', 'd')).toEqual(['a', 'd', 'c', 'a']);
    expect(g.findCycle()).toBeUndefined();
    g.addEdgeUnchecked('a', 'd');
    expect(g.findCycle()).toEqual(['a', 'd', 'c', 'a']);
  });
});
