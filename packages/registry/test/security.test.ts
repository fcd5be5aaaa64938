// Another user's registry is never joined unless allowed; a full /dev/shm and the fd limit are errors or
// handled, never a signal or a leftover segment.
import { describe, expect, it } from 'vitest';
import { canMountTmpfs, canSwitchUsers, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { fixture, openRegistry } from './harness.js';

describe('registry security and limits', () => {
  it.skipIf(!canSwitchUsers)('a registry segment of another uid is refused (ERR_LIBIPC_PERMISSION) unless that uid is allowed', async () => {
    const domain = uniqueName('squat');
    const squatter = spawnNode(fixture('squatter.mjs'), [domain], {}, [], { asUid: 65534 });
    try {
      expect(await squatter.line('ready')).toBe('ready 65534');
      expect(() => openRegistry(domain)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_PERMISSION' }));
      const shared = openRegistry(domain, { allowUsers: [65534] });
      expect(shared.find('theirs')).toMatchObject({ name: 'theirs' });
      shared.close();
    } finally {
      squatter.child.kill('SIGTERM');
      await squatter.exited;
    }
    // The squatter's process removed its own segment (its last close).
    expect(shmObjects(`registry.${domain}`)).toEqual([]);
  });

  it.skipIf(!canMountTmpfs)('a full /dev/shm: opening one more registry fails with ERR_LIBIPC_NO_SPACE, the others go on', async () => {
    const child = spawnNode(fixture('full-tmpfs.mjs'), [], {}, [], { smallTmpfs: { size: '4m', inodes: 1000 } });
    const report = JSON.parse(await child.line('{'));
    expect(report.code).toBe('ERR_LIBIPC_NO_SPACE');
    expect(report.registries).toBeGreaterThan(0);
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  it('at the fd limit (ulimit -n 64) the last close still removes the segment', async () => {
    const domain = uniqueName('fdl');
    const child = spawnNode(fixture('fd-limit.mjs'), [domain], {}, [], { maxFds: 64 });
    const report = JSON.parse(await child.line('{'));
    expect(report.exhausted).toBeGreaterThan(0);
    expect(report.error).toBeUndefined();
    expect(report.left).toEqual([]);
    expect((await child.exited).code).toBe(0);
  });
});
