// sampleUsage/cpuPercent: what `libipc ps` and a memory limit read of a process, checked against /proc itself.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type UsageSample, cpuPercent, sampleUsage } from '../src/index.js';

const sample = (pid: number, cpuMs: number, at: number): UsageSample => ({ pid, cpuMs, rssBytes: 0, at });

describe('cpuPercent', () => {
  it.each<[string, UsageSample | undefined, UsageSample | undefined, number | undefined]>([
    ['one core busy', sample(1, 0, 0), sample(1, 1000, 1000), 100],
    ['two cores busy', sample(1, 0, 0), sample(1, 500, 250), 200],
    ['idle', sample(1, 70, 0), sample(1, 70, 1000), 0],
    ['a quarter', sample(1, 10, 100), sample(1, 60, 300), 25],
    ['another process', sample(1, 0, 0), sample(2, 10, 100), undefined],
    ['no time passed', sample(1, 0, 5), sample(1, 10, 5), undefined],
    ['counter went back (pid reused)', sample(1, 500, 0), sample(1, 10, 100), undefined],
    ['no first reading', undefined, sample(1, 10, 100), undefined],
  ])('%s', (_name, a, b, expected) => {
    expect(cpuPercent(a, b)).toBe(expected);
  });
});

describe('sampleUsage', () => {
  it('reads the CPU time and resident memory that /proc reports, and nothing for a process that is gone', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      // Once `sleep` sleeps (state S) its start-up is over: its memory and CPU time stay put while both are read.
      const state = () => readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]![0];
      while (state() !== 'S') await new Promise((r) => setTimeout(r, 5));
      const s = sampleUsage(child.pid!)!;
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      expect(s.cpuMs).toBe((Number(f[11]) + Number(f[12])) * 10);
      const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]);
      expect(s.rssBytes).toBe(kb * 1024);
      expect(s.rssBytes).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    expect(sampleUsage(child.pid!)).toBeUndefined();
    expect(sampleUsage(2 ** 22 + 1)).toBeUndefined();
  });

  it('a process spinning on a CPU shows CPU time growing; a sleeping one shows none', async () => {
    const busy = spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' });
    const idle = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await Promise.all([once(busy, 'spawn'), once(idle, 'spawn')]);
      const b0 = sampleUsage(busy.pid!)!;
      // Once `sleep` sleeps (state S), its start-up CPU time is all counted and nothing more comes.
      const state = () => readFileSync(`/proc/${idle.pid}/stat`, 'utf8').split(') ')[1]![0];
      while (state() !== 'S') await new Promise((r) => setTimeout(r, 5));
      const i0 = sampleUsage(idle.pid!)!;
      // Wait until the busy one has used CPU time we can see (10 ms ticks), however loaded the machine is.
      let b1 = sampleUsage(busy.pid!)!;
      while (b1.cpuMs <= b0.cpuMs + 20) {
        await new Promise((r) => setTimeout(r, 20));
        b1 = sampleUsage(busy.pid!)!;
      }
      expect(cpuPercent(b0, b1)).toBeGreaterThan(0);
      expect(cpuPercent(i0, sampleUsage(idle.pid!))).toBe(0);
    } finally {
      busy.kill('SIGKILL');
      idle.kill('SIGKILL');
      await Promise.all([once(busy, 'exit'), once(idle, 'exit')]);
    }
  });
});
