import { describe, expect, it } from 'vitest';
import { ExitedEarlyError } from '@libipc/shm';
import { spawn, waitForReady } from '../src/index.js';
import { fixture, node, track } from './support.js';

describe('readiness on LIBIPC_READY_FD', () => {
  it('resolves when a Node child calls ready()', async () => {
    const h = track(spawn('n', node, [fixture('serve.mjs')]));
    await waitForReady(h, 20_000);
    expect(h.isAlive()).toBe(true);
  });

  it('ready() leaves module resolution intact in the child (a require through a pnpm symlink still resolves)', async () => {
    const h = track(spawn('r', node, [fixture('ready-then-require.mjs')], { stdio: 'pipe' }));
    await waitForReady(h, 20_000);
    let out = '';
    for await (const chunk of (h as unknown as { stdout: NodeJS.ReadableStream }).stdout) out += String(chunk);
    expect(out.trim()).toMatch(/packages\/shm\/dist\/index\.cjs$/);
    expect(out).not.toContain('node_modules');
  });

  it('resolves when a /bin/sh child writes READY to the fd', async () => {
    const h = track(spawn('s', fixture('ready.sh')));
    await waitForReady(h, 20_000);
    expect(h.isAlive()).toBe(true);
  });

  it('rejects with ERR_LIBIPC_EXITED_EARLY promptly when the child dies first, with the stderr tail', async () => {
    const h = track(spawn('d', node, [fixture('exit.mjs'), '3', 'bad config line 7'], { stdio: 'pipe' }));
    const t0 = Date.now();
    const err = (await waitForReady(h, 30_000).catch((e: unknown) => e)) as ExitedEarlyError;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(ExitedEarlyError);
    expect(err).toMatchObject({ code: 'ERR_LIBIPC_EXITED_EARLY', exitCode: 3, signal: null });
    expect(err.stderrTail).toContain('bad config line 7');
    expect(err.message).toContain('bad config line 7');
  });

  it('rejects with ERR_LIBIPC_TIMEOUT when READY never comes, leaving the child running', async () => {
    const h = track(spawn('t', 'sleep', ['100']));
    await expect(waitForReady(h, 200)).rejects.toMatchObject({ code: 'ERR_LIBIPC_TIMEOUT' });
    expect(h.isAlive()).toBe(true);
  });

  it('stops waiting when aborted', async () => {
    const h = track(spawn('a', 'sleep', ['100']));
    const ac = new AbortController();
    const p = waitForReady(h, undefined, ac.signal);
    ac.abort(new Error('no longer needed'));
    await expect(p).rejects.toThrow('no longer needed');
  });
});
