import { describe, expect, it } from 'vitest';
import { isAlive, processIdentity, selfIdentity, watchExit } from '../src/index.js';
import { spawnNode } from '../../../test/helpers.js';
import { family, fixture } from './fixtures.js';
import { readFileSync } from 'node:fs';

const state = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
};

describe('process identity', () => {
  it('identifies a live process by pid and start time', () => {
    const me = selfIdentity();
    expect(me.pid).toBe(process.pid);
    expect(processIdentity(process.pid)).toEqual(me);
    expect(isAlive(process.pid)).toBe(true);
    expect(isAlive(process.pid, me.startTime)).toBe(true);
  });

  it('is false for a pid with a different start time (a reused pid is another process)', () => {
    const me = selfIdentity();
    expect(isAlive(process.pid, me.startTime + 1n)).toBe(false);
  });

  it('is false for a zombie', async () => {
    const f = await family('zombie');
    try {
      // The child exits at once; wait until the kernel shows it as a zombie.
      await watchExit(f.pid);
      expect(state(f.pid)).toBe('Z');
      expect(isAlive(f.pid)).toBe(false);
      expect(processIdentity(f.pid)).toBeUndefined();
    } finally {
      await f.release();
    }
  });

  it('is false for a pid that does not exist', () => {
    expect(isAlive(2 ** 22 + 12345)).toBe(false);
  });
});

describe('watchExit', () => {
  it('resolves promptly when a process that is not our child dies', async () => {
    const f = await family('sleeper');
    try {
      const id = processIdentity(f.pid)!;
      expect(id).toBeDefined();
      let resolved = false;
      const watching = watchExit(f.pid, id.startTime).then(() => (resolved = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(resolved).toBe(false);
      const t0 = performance.now();
      process.kill(f.pid, 'SIGKILL');
      await watching;
      expect(performance.now() - t0).toBeLessThan(2_000);
    } finally {
      await f.release();
    }
  });

  it('resolves for our own child’s exit too', async () => {
    const child = spawnNode(fixture('exit.mjs'));
    const pid = child.child.pid!;
    const watching = watchExit(pid);
    await child.exited;
    await watching;
  });

  it('resolves at once for a pid that is gone or now belongs to another process', async () => {
    await watchExit(2 ** 22 + 12345);
    await watchExit(process.pid, selfIdentity().startTime + 1n);
  });

  it('can be aborted, and rejects bad pids', async () => {
    const ac = new AbortController();
    const watching = watchExit(process.pid, undefined, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(watching).rejects.toThrow('stop');
    expect(() => watchExit(0)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => watchExit(-5)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
  });
});
