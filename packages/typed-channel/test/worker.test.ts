// Native lifetimes: worker threads that end with handles open, and garbage collection of closed handles.
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { sanitizerReports, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { Channel } from '../src/index.js';

const fixture = fileURLToPath(new URL('./fixtures/worker-receiver.mjs', import.meta.url));
const bellFixture = fileURLToPath(new URL('./fixtures/exit-with-bell.mjs', import.meta.url));

describe('Channel and worker threads', () => {
  it('a worker terminated while its receiver sleeps in recv neither crashes nor holds senders back', async () => {
    const name = uniqueName('worker');
    const tx = new Channel(name, { capacity: 4 });
    try {
      for (let round = 0; round < 3; round++) {
        const w = new Worker(fixture, { workerData: name });
        const messages: unknown[] = [];
        w.on('message', (m) => messages.push(m));
        await once(w, 'message');
        expect(await tx.waitForRecv(1, { timeoutMs: 10_000 })).toBe(true);
        expect(await tx.send(`hello ${round}`, { timeoutMs: 10_000 })).toBe(true);
        while (messages.length < 2) await once(w, 'message');
        expect(messages[1]).toBe(`hello ${round}`);
        await w.terminate();
        // Its row stopped counting: nobody receives, so send says so at once instead of waiting on a full ring.
        expect(tx.recvCount).toBe(0);
        expect(await tx.send('after', { timeoutMs: 1000 })).toBe(false);
      }
    } finally {
      tx.close();
    }
    expect(shmObjects(name)).toEqual([]);
  });

  it('survives many handles opened, closed and collected', async () => {
    const name = uniqueName('gc');
    const tx = new Channel(name);
    for (let i = 0; i < 200; i++) {
      const rx = new Channel(name, { mode: 'receiver' });
      tx.trySend(`m${i}`);
      expect(Buffer.from(rx.tryRecv()!).toString()).toBe(`m${i}`);
      rx.close();
    }
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 10));
    tx.close();
    expect(shmObjects(name)).toEqual([]);
  });
});

describe('doorbells when their environment ends', () => {
  // An armed doorbell keeps its native object alive; an environment that ends first must let go of it. Under
  // .ci/sanitize the child's LeakSanitizer report is read here.
  it.each([['exit'], ['worker']])('a receiver asleep in recv when its environment ends (%s) leaves no leak and no FIFO', async (mode) => {
    const name = uniqueName('bell');
    const asan = sanitizerReports();
    try {
      const child = spawnNode(bellFixture, [mode, name], asan.env);
      expect(await child.line('set', 30_000)).toBe('set');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      expect(asan.reports()).toEqual([]);
      expect(shmObjects(name)).toEqual([]);
    } finally {
      asan.remove();
    }
  }, 60_000);
});
