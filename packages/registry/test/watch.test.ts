import { describe, expect, it } from 'vitest';
import type { RegistryChange } from '../src/index.js';
import { uniqueName } from '../../../test/helpers.js';
import { openRegistry, startChild } from './harness.js';

async function take(changes: AsyncIterator<RegistryChange>, count: number): Promise<RegistryChange[]> {
  const got: RegistryChange[] = [];
  while (got.length < count) {
    const next = await changes.next();
    if (next.done) break;
    got.push(next.value);
  }
  return got;
}

describe('watch and waitFor', () => {
  it('delivers every change from every process, in each process’s order', async () => {
    const domain = uniqueName('watch');
    const r = openRegistry(domain);
    const changes = r.watch();
    const writers = [0, 1, 2].map((id) => startChild('changes.mjs', [domain, String(id), '30']));
    const got = await take(changes, 3 * 30 * 2);
    for (const [id, w] of writers.entries()) {
      await w.line('done');
      const mine = got.filter((c) => c.entry.name.startsWith(`c${id}.`));
      expect(mine.every((c) => c.entry.pid === w.child.pid)).toBe(true);
      const expected = Array.from({ length: 30 }, (_, i) => [`registered c${id}.n${i}`, `unregistered c${id}.n${i}`]).flat();
      expect(mine.map((c) => `${c.type} ${c.entry.name}`)).toEqual(expected);
    }
    expect(got).toHaveLength(180);
  });

  it('sleeps while nothing changes (no callbacks run), then wakes on a change', async () => {
    const domain = uniqueName('idle');
    const r = openRegistry(domain);
    const watcher = startChild('idle-watcher.mjs', [domain]);
    const idle = Number((await watcher.line('idle')).split(' ')[1]);
    expect(idle).toBeLessThan(10); // a 50 ms poll would run ~20 in that second
    r.register('poke', 'a', 'b');
    expect(await watcher.line('change')).toBe('change registered poke');
    await watcher.exited;
  });

  it('a watcher that fell more than the ring behind still ends at the true state', async () => {
    const r = openRegistry(uniqueName('lag'), { capacity: 4 });
    r.register('kept', 'a', 'b');
    const changes = r.watch();
    r.unregister('kept');
    for (let i = 0; i < 300; i++) {
      r.register('churn', 'a', 'b');
      r.unregister('churn');
    }
    r.register('final', 'a', 'b');
    const got = await take(changes, 2);
    expect(got.map((c) => `${c.type} ${c.entry.name}`)).toEqual(['unregistered kept', 'registered final']);
  });

  it('waitFor resolves when another process registers the name', async () => {
    const domain = uniqueName('waitfor');
    const r = openRegistry(domain);
    const pending = r.waitFor('late.svc', { timeoutMs: 30_000 });
    const c = startChild('register.mjs', [domain, 'late.svc']);
    const entry = await pending;
    expect(entry).toMatchObject({ name: 'late.svc', pid: c.child.pid, controlChannel: 'late.svc.ctl' });
    // Already registered: at once.
    expect((await r.waitFor('late.svc'))?.pid).toBe(c.child.pid);
  });

  it('waitFor gives undefined after timeoutMs, rejects on abort and on close; watch ends on close', async () => {
    const r = openRegistry(uniqueName('waitend'));
    expect(await r.waitFor('never', { timeoutMs: 50 })).toBeUndefined();
    const controller = new AbortController();
    const aborted = r.waitFor('never', { signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    await expect(r.waitFor('never', { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });

    const stop = new AbortController();
    const stopped = r.watch({ signal: stop.signal });
    const pendingChange = stopped.next();
    stop.abort();
    expect(await pendingChange).toMatchObject({ done: true });

    const changes = r.watch();
    const waiting = r.waitFor('never');
    const next = changes.next();
    r.close();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_LIBIPC_CLOSED' });
    expect(await next).toMatchObject({ done: true });
  });
});
