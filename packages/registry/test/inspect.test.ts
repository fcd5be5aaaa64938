// inspectRegistry: entries (dead ones too), group records and attached processes, read without joining.
import { describe, expect, it } from 'vitest';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { inspectRegistry, ServiceRegistry } from '../src/index.js';

describe('inspectRegistry', () => {
  it('shows live and dead entries and group records without removing or joining anything', async () => {
    const domain = uniqueName('rinsp');
    const registry = new ServiceRegistry(domain);
    try {
      registry.register('a.0', 'ctl', 'rep', { meta: 'm' });
      registry.claimPrimary('a', 'a.0', 0);
      const child = spawnNode('-e', ['setInterval(() => {}, 1000); console.log("up")']);
      await child.line('up');
      registry.register('b.0', 'ctl', 'rep', { pid: child.child.pid });
      await child.kill('SIGKILL');
      const snap = inspectRegistry(domain);
      expect(snap.entries.map((e) => [e.name, e.alive])).toEqual([
        ['a.0', true],
        ['b.0', false],
      ]);
      expect(snap.entries[0]).toMatchObject({ pid: process.pid, controlChannel: 'ctl', replyChannel: 'rep', meta: 'm' });
      expect(snap.groups).toEqual([{ name: 'a', epoch: 1, primary: 'a.0' }]);
      expect(snap.users).toEqual([expect.objectContaining({ pid: process.pid, alive: true })]);
      // Nothing was removed: the registry itself still finds the dead entry to collect.
      expect(registry.gc()).toBe(1);
    } finally {
      registry.clear();
      registry.close();
    }
    expect(shmObjects(domain)).toEqual([]);
    expect(() => inspectRegistry(domain)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
  });
});
