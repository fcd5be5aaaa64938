import { describe, expect, it } from 'vitest';
import { zombieChildren } from '../../../test/helpers.js';
import type { HistoryEvent, ServiceSpec } from '../src/index.js';
import { manager, pidAlive, processesOf, svc, until } from './support.js';

const sleeper = (name: string): ServiceSpec => ({ name, command: 'sleep', args: ['1000'], logs: 'ignore' });

describe('under load', () => {
  it('100 processes started and stopped concurrently: no zombie, nothing left', async () => {
    const m = manager();
    const names = Array.from({ length: 100 }, (_, i) => `p${i}`);
    await Promise.all(names.map((n) => m.start(sleeper(n))));
    expect(m.count()).toBe(100);
    const pids = m.statusAll().map((s) => s.pid!);
    expect(new Set(pids).size).toBe(100);
    await Promise.all(names.map((n) => m.stop(n)));
    expect(m.count()).toBe(0);
    expect(pids.filter(pidAlive)).toEqual([]);
    expect(zombieChildren()).toEqual([]);
  });

  it('a storm of start/stop/startN/stopAll/restart settles to what the last call asked', async () => {
    const m = manager();
    const ops: Array<() => Promise<void>> = [];
    const names = ['s0', 's1', 's2', 's3'];
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const want = new Map<string, 'running' | 'stopped'>();
    for (let i = 0; i < 120; i++) {
      const n = names[rand(names.length)]!;
      switch (rand(5)) {
        case 0:
          ops.push(() => m.start(sleeper(n)));
          break;
        case 1:
          ops.push(() => m.stop(n));
          break;
        case 2:
          ops.push(() => m.startN({ ...sleeper(`g${n}`), instances: 2 }));
          break;
        case 3:
          ops.push(() => m.stopAll('g*'));
          break;
        default:
          ops.push(() => m.restart(n));
      }
    }
    await Promise.allSettled(ops.map((op) => op()));
    // Settle: wait until nothing is in motion, then every service is where its desired state says.
    const settled = () => m.statusAll().every((s) => (s.desired === 'running' ? s.state === 'running' : s.state === 'stopped'));
    await until(m, settled, 'a settled state');
    for (const s of m.statusAll()) {
      want.set(s.name, s.desired);
      expect(processesOf(s.service).filter((p) => p === s.pid)).toHaveLength(s.state === 'running' ? 1 : 0);
    }
    // Never two processes for one name.
    for (const n of names) expect(processesOf(n).length).toBeLessThanOrEqual(1);
    expect(m.count()).toBe([...want.values()].filter((d) => d === 'running').length);
    await m.stopAll('*');
    expect(m.count()).toBe(0);
  });

  it('the reconciler and the restart policy never start a process twice', async () => {
    const m = manager({ reconcileMs: 10 });
    const doubles: number[] = [];
    m.on('start', (e: HistoryEvent) => {
      const live = processesOf('loop');
      if (live.length > 1) doubles.push(live.length);
    });
    const starts: HistoryEvent[] = [];
    m.on('start', (e: HistoryEvent) => starts.push(e));
    await m.start(svc('loop', { flags: ['--exit', '1', '--delay', '20'], readiness: 'none', restart: { policy: 'always', backoff: { initialMs: 5, factor: 1, maxMs: 5 }, maxRestarts: 1000, windowMs: 60_000 } }));
    await until(m, () => starts.length >= 15, '15 restarts');
    await m.stop('loop');
    expect(doubles).toEqual([]);
    expect(processesOf('loop')).toEqual([]);
  });
});
