import { describe, expect, it } from 'vitest';
import { processIdentity } from '@libipc/shm';
import { spawn, shutdown, requestShutdown, waitForReady, waitForExit, forceKill } from '../src/index.js';
import { fixture, lineOf, node, track } from './support.js';

describe('shutdown', () => {
  it('stops a child that honours SIGTERM at once', async () => {
    const h = track(spawn('polite', node, [fixture('serve.mjs')]));
    await waitForReady(h, 20_000);
    const t0 = Date.now();
    const st = await shutdown(h, 20_000);
    expect(st).toMatchObject({ reason: 'signaled', signal: 'SIGTERM' });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(h.isAlive()).toBe(false);
  });

  it('escalates to SIGKILL after graceMs when the child ignores SIGTERM', async () => {
    const h = track(spawn('stubborn', node, [fixture('serve.mjs'), '--ignore-term']));
    await waitForReady(h, 20_000);
    const t0 = Date.now();
    const st = await shutdown(h, 300);
    const elapsed = Date.now() - t0;
    expect(st).toMatchObject({ reason: 'signaled', signal: 'SIGKILL' });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5000);
  });

  it('requestShutdown sends the signal asked for and returns false once the child is gone', async () => {
    const h = track(spawn('intr', node, [fixture('serve.mjs')]));
    await waitForReady(h, 20_000);
    expect(requestShutdown(h, 'SIGINT')).toBe(true);
    expect((await h.exit).signal).toBe('SIGINT');
    expect(requestShutdown(h)).toBe(false);
  });

  it('shuts down an exited child immediately with its status', async () => {
    const h = track(spawn('gone', node, [fixture('exit.mjs'), '2']));
    await h.exit;
    expect(await shutdown(h, 10_000)).toMatchObject({ exitCode: 2 });
  });

  it('killTree: shutdown kills grandchildren that ignore SIGTERM too', async () => {
    const h = track(spawn('tree', node, [fixture('tree.mjs')], { stdio: 'pipe', killTree: true }));
    const grandchild = Number((await lineOf(h, 'grandchild ')).split(' ')[1]);
    expect(processIdentity(grandchild)).toBeDefined();
    const t0 = Date.now();
    const st = await shutdown(h, 300);
    expect(st.signal).toBe('SIGTERM');
    expect(Date.now() - t0).toBeLessThan(5000);
    // The grandchild is dead (an unreaped orphan is a zombie: processIdentity treats it as gone).
    expect(processIdentity(grandchild)).toBeUndefined();
  });

  it('killTree: forceKill kills the whole group, the leader ignoring SIGTERM', async () => {
    const h = track(spawn('tree2', node, [fixture('tree.mjs'), '--ignore-term'], { stdio: 'pipe', killTree: true }));
    const grandchild = Number((await lineOf(h, 'grandchild ')).split(' ')[1]);
    expect((await waitForExit(h, 100)).reason).toBe('timeout');
    expect(forceKill(h)).toBe(true);
    expect((await h.exit).signal).toBe('SIGKILL');
    const { watchExit } = await import('@libipc/shm');
    await watchExit(grandchild);
    expect(processIdentity(grandchild)).toBeUndefined();
  });

  it('without killTree a grandchild outlives its parent (why killTree exists)', async () => {
    const h = track(spawn('tree3', node, [fixture('tree.mjs')], { stdio: 'pipe' }));
    const grandchild = Number((await lineOf(h, 'grandchild ')).split(' ')[1]);
    await shutdown(h, 5000);
    expect(processIdentity(grandchild)).toBeDefined();
    process.kill(grandchild, 'SIGKILL');
    const { watchExit } = await import('@libipc/shm');
    await watchExit(grandchild);
  });

  it('refuses a negative or NaN grace period', async () => {
    const h = track(spawn('g', node, [fixture('serve.mjs')]));
    await expect(shutdown(h, -5)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    await expect(shutdown(h, Number.NaN)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
  });
});
