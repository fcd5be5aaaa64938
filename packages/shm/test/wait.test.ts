import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedMemory, wait, waitBackend, waitSync, wake } from '../src/index.js';
import { spawnNode, uniqueName } from '../../../test/helpers.js';
import { fixture } from './fixtures.js';

let mem: SharedMemory | undefined;
afterEach(() => {
  if (!mem) return;
  mem.close();
  SharedMemory.unlink(mem.name);
  mem = undefined;
});

describe('wait / wake', () => {
  it('a wait in this process is woken by wake from another, and the event loop keeps running meanwhile', async () => {
    mem = SharedMemory.create(uniqueName('wake'), 4096);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const pending = wait(mem, 0, 0, 30_000);
    // Let the loop run: if the wait blocked it, no tick could happen before the other process writes.
    await new Promise((r) => setTimeout(r, 100));
    const ticksWhileWaiting = ticks;
    const writer = spawnNode(fixture('writer.mjs'), [mem.name, '5']);
    expect(await writer.line('written')).toBe('written 1');
    await writer.exited;
    expect(await pending).toBe('ok');
    clearInterval(ticker);
    expect(ticksWhileWaiting).toBeGreaterThan(3);
    expect(Atomics.load(new Int32Array(mem.buffer), 0)).toBe(5);
  });

  it.each([['default'], ['threads']])('a process using the %s wait backend is woken by this one', async (backend) => {
    mem = SharedMemory.create(uniqueName('backend'), 4096);
    const env: Record<string, string> = backend === 'threads' ? { LIBIPC_WAIT_BACKEND: 'threads' } : {};
    const reader = spawnNode(fixture('reader.mjs'), [mem.name], env);
    expect(await reader.line('waiting')).toBe(`waiting (${backend === 'threads' ? 'threads' : waitBackend()})`);
    Atomics.store(new Int32Array(mem.buffer), 0, 9);
    wake(mem, 0);
    expect(await reader.line('value')).toBe('value 9');
    await reader.exited;
  });

  it('returns not-equal at once when the word differs, and timed-out at its timeout', async () => {
    mem = SharedMemory.create(uniqueName('wait'), 4096);
    Atomics.store(new Int32Array(mem.buffer), 1, 3);
    expect(await wait(mem, 4, 0)).toBe('not-equal');
    expect(await wait(mem, 0, 0, 30)).toBe('timed-out');
    expect(await wait(mem, 0, 0, 0)).toBe('timed-out');
    expect(waitSync(mem, 0, 0, 20)).toBe('timed-out');
    expect(waitSync(mem, 4, 0, 20)).toBe('not-equal');
    // A spinning waiter sees a change made while it spins.
    const spinning = wait(mem, 8, 0, 1000, { spinUs: 1000 });
    expect(await spinning).toBe('timed-out');
  });

  it('100 pending waits do not delay fs.readFile (they never sit on libuv’s threadpool)', async () => {
    mem = SharedMemory.create(uniqueName('pool'), 4096);
    const waits = Array.from({ length: 100 }, (_, i) => wait(mem!, (i % 1000) * 4, 0, 60_000));
    const t0 = performance.now();
    const text = await readFile(new URL(import.meta.url), 'utf8');
    const readMs = performance.now() - t0;
    expect(text).toContain('100 pending waits');
    // With the threadpool (4 threads) busy, readFile could not finish before the 60 s waits end.
    expect(readMs).toBeLessThan(10_000);
    for (let i = 0; i < 100; i++) {
      Atomics.store(new Int32Array(mem.buffer), i, 1);
      wake(mem, i * 4);
    }
    const results = await Promise.all(waits);
    expect(results.every((r) => r === 'ok' || r === 'not-equal')).toBe(true);
  });

  it('close() settles pending waits with ERR_LIBIPC_CLOSED', async () => {
    const m = SharedMemory.create(uniqueName('closew'), 4096);
    const pending = wait(m, 0, 0, 30_000);
    m.close();
    SharedMemory.unlink(m.name);
    await expect(pending).rejects.toMatchObject({ code: 'ERR_LIBIPC_CLOSED' });
  });
});
