// Registrations carry death leases: a registrant's death is known from the kernel at once, before its process is
// torn down and before anyone looks at /proc.
import { describe, expect, it } from 'vitest';
import { fixture, openRegistry, startChild } from './harness.js';
import { spawnNode, uniqueName } from '../../../test/helpers.js';

describe('death leases in the registry', () => {
  it('an entry of this process carries a lease; one registered for a pid does not', () => {
    const r = openRegistry(uniqueName('lz'));
    r.register('self', 'c', 'r');
    r.register('forpid', 'c', 'r', { pid: process.pid });
    expect(r.find('self')!.leased).toBe(true);
    expect(r.find('forpid')!.leased).toBe(false);
    expect(r.isAlive(r.find('self')!)).toBe(true);
  });

  it('an entry of ours removed by another process: its slot stays taken until our handle lets go of the lease', async () => {
    const domain = uniqueName('lr');
    const ours = openRegistry(domain, { capacity: 1 });
    ours.register('x', 'c', 'r');
    ours.find('x'); // a look after our own change: the next one must still notice the other process's removal
    const remover = startChild('unregister.mjs', [domain, 'x']);
    expect(await remover.line('unregistered')).toBe('unregistered x');
    expect((await remover.exited).code).toBe(0);
    // The only slot's memory is still on this thread's robust list (ours holds the lease): never reused under it.
    const other = openRegistry(domain);
    expect(() => other.register('y', 'c', 'r')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_REGISTRY_FULL' }));
    expect(ours.find('x')).toBeUndefined(); // any call of ours notices the removal and releases the lease
    expect(other.register('y', 'c', 'r')).toBe(true);
    expect(other.find('y')!.leased).toBe(true);
  });

  it('waitForDeath: a SIGKILLed 200 MB registrant is known dead from its lease before its exit event', async () => {
    const domain = uniqueName('ld');
    const r = openRegistry(domain);
    const child = spawnNode(fixture('leased.mjs'), [domain, 'entry:big', '200']);
    await child.line('held');
    const entry = r.find('big')!;
    expect(entry.leased).toBe(true);
    const order: string[] = [];
    const death = r.waitForDeath(entry).then((how) => order.push(`death ${how}`));
    const exit = child.exited.then(() => order.push('exit'));
    child.child.kill('SIGKILL');
    await Promise.all([death, exit]);
    expect(order).toEqual(['death owner-died', 'exit']);
    expect(r.isAlive(entry)).toBe(false);
    expect(r.find('big')).toBeUndefined();
  });

  it('watch() reports removed-dead the moment a lease breaks, without anyone calling list or gc', async () => {
    const domain = uniqueName('lw');
    const r = openRegistry(domain);
    const child = startChild('leased.mjs', [domain, 'entry:svc']);
    await child.line('held');
    const changes = r.watch();
    const next = changes.next(); // the first change after watch() is the death, wherever the watcher is then
    child.child.kill('SIGKILL');
    expect((await next).value).toMatchObject({ type: 'removed-dead', entry: { name: 'svc', pid: child.child.pid } });
    await changes.return?.(undefined);
  });

  it('a registration made by a worker thread dies with the worker, though its process lives', async () => {
    const domain = uniqueName('lwk');
    const r = openRegistry(domain);
    const child = startChild('leased.mjs', [domain, 'worker:wsvc']);
    await child.line('worker registered');
    await child.line('worker terminated');
    expect(r.find('wsvc')).toBeUndefined();
    expect(child.child.exitCode).toBeNull(); // the process is alive
  });

  it("a group's host lease: members learn of their host's death from it", async () => {
    const domain = uniqueName('lg');
    const r = openRegistry(domain);
    const host = startChild('leased.mjs', [domain, 'group:grp']);
    await host.line('held');
    expect(r.groupLeaseState('grp')).toBe('held');
    const watching = r.watchGroupLease('grp');
    host.child.kill('SIGKILL');
    expect(await watching).toBe('owner-died');
    expect(r.groupLeaseState('grp')).toBe('owner-died');
    expect(r.holdGroupLease('grp')).toBe(true); // a new host takes it over
    expect(r.releaseGroupLease('grp')).toBe(true);
    expect(r.groupLeaseState('grp')).toBe('released');
  });
});
