import { describe, expect, it } from 'vitest';
import { ENTRY_SIZE, geometry } from '../src/layout.js';
import { shmObjects, uniqueName } from '../../../test/helpers.js';
import { openRegistry, startChild } from './harness.js';

describe('crashes and stopped processes', () => {
  it('a process SIGKILLed holding the lock mid-write wedges nobody and leaves no half-written entry', async () => {
    const domain = uniqueName('killed');
    const r = openRegistry(domain, { capacity: 4 });
    r.register('before', 'before.ctl', 'before.rep'); // slot 0
    const holder = startChild('lock-holder.mjs', [domain, String(geometry(4).entries + 1 * ENTRY_SIZE)]);
    await holder.line('locked');
    await holder.kill('SIGKILL');

    const started = performance.now();
    expect(r.list().map((e) => e.name)).toEqual(['before']);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(r.find('ghost')).toBeUndefined();
    // Every slot is usable again, including the one it was writing.
    for (const name of ['a', 'b', 'c']) expect(r.register(name, `${name}.ctl`, `${name}.rep`)).toBe(true);
    expect(r.list().map((e) => `${e.name}:${e.controlChannel}:${e.pid}`)).toEqual(
      ['a', 'b', 'before', 'c'].map((n) => `${n}:${n}.ctl:${process.pid}`),
    );
    expect(() => r.register('d', 'd', 'd')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_REGISTRY_FULL' }));
  });

  it('a process SIGSTOPped holding the lock makes operations fail with ERR_LIBIPC_TIMEOUT at the bound, not hang', async () => {
    const domain = uniqueName('stopped');
    const r = openRegistry(domain); // default bound: 1000 ms
    r.register('svc', 'ctl', 'rep');
    const holder = startChild('lock-holder.mjs', [domain]);
    await holder.line('locked');
    holder.child.kill('SIGSTOP');

    const started = performance.now();
    let error: unknown;
    try {
      r.find('svc');
    } catch (err) {
      error = err;
    }
    const waited = performance.now() - started;
    expect(error).toMatchObject({ code: 'ERR_LIBIPC_TIMEOUT' });
    expect((error as Error).message).toContain(`process ${holder.child.pid}`);
    expect(waited).toBeGreaterThan(500);
    expect(waited).toBeLessThan(5000);
    expect(() => r.register('other', 'a', 'b')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_TIMEOUT' }));

    holder.child.kill('SIGCONT');
    await holder.kill('SIGKILL');
    expect(r.find('svc')?.pid).toBe(process.pid);
    expect(r.register('other', 'a', 'b')).toBe(true);
  });

  it('8 processes registering and unregistering 1,000 names each, one SIGKILLed mid-run: the table holds exactly the live registrations', async () => {
    const domain = uniqueName('churn');
    const r = openRegistry(domain, { capacity: 2048 });
    const workers = Array.from({ length: 8 }, (_, i) => startChild('churn.mjs', [domain, String(i), '1000']));
    const victim = workers[3]!;
    await victim.line('running', 60_000);
    await victim.kill('SIGKILL');

    const held = new Map<string, number>();
    for (const w of workers.filter((w) => w !== victim)) {
      const names = JSON.parse((await w.line('done', 60_000)).slice('done '.length)) as string[];
      for (const name of names) held.set(name, w.child.pid!);
    }
    const table = r.list();
    expect(table.map((e) => e.name)).toEqual([...held.keys()].sort());
    for (const e of table) {
      expect(e).toMatchObject({ pid: held.get(e.name), controlChannel: `${e.name}.ctl`, replyChannel: `${e.name}.rep` });
    }
    expect(table.some((e) => e.pid === victim.child.pid)).toBe(false);
    // And the slots the victim held are free: every non-listed slot can be registered.
    expect(r.gc()).toBe(0);
    const room = r.capacity - table.length;
    for (let i = 0; i < room; i++) expect(r.register(`fill.${i}`, 'a', 'b')).toBe(true);
    expect(() => r.register('one.more', 'a', 'b')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_REGISTRY_FULL' }));
  });

  it('leaves nothing in /dev/shm once every process is gone and the last one closes', async () => {
    const domain = uniqueName('gone');
    const r = openRegistry(domain);
    const worker = startChild('register.mjs', [domain, 'w']);
    await worker.line('registered');
    await worker.kill('SIGKILL'); // never closed: its user slot and entry are reaped by identity
    expect(r.list()).toEqual([]);
    r.close();
    expect(shmObjects(domain)).toEqual([]);
  });
});
