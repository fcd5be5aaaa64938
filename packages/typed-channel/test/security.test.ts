// A full /dev/shm (space or inodes) and the fd limit are coded errors or handled, never a signal or a leftover.
import { describe, expect, it } from 'vitest';
import { canMountTmpfs, spawnNode, uniqueName } from '../../../test/helpers.js';

const fixture = (f: string) => new URL(`./fixtures/${f}`, import.meta.url).pathname;

describe('channel limits', () => {
  it.skipIf(!canMountTmpfs)('a full /dev/shm: the next channel fails with ERR_LIBIPC_NO_SPACE, the created ones keep working', async () => {
    const child = spawnNode(fixture('full-tmpfs.mjs'), ['space'], {}, [], { smallTmpfs: { size: '4m', inodes: 1000 } });
    const report = JSON.parse(await child.line('{'));
    expect(report.code).toBe('ERR_LIBIPC_NO_SPACE');
    expect(report.handles).toBeGreaterThan(0);
    expect(report.sent).toBe((report.handles / 2) * 50);
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  it.skipIf(!canMountTmpfs)('no inode left for a receiver’s doorbell FIFO: ERR_LIBIPC_NO_SPACE (mkfifo), not an uncoded error', async () => {
    const child = spawnNode(fixture('full-tmpfs.mjs'), ['inodes'], {}, [], { smallTmpfs: { size: '4m', inodes: 20 } });
    const report = JSON.parse(await child.line('{'));
    expect(report.code).toBe('ERR_LIBIPC_NO_SPACE');
    expect(report.message).toMatch(/doorbell/);
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  it('at the fd limit (ulimit -n 64) the last close still removes the segment and doorbells', async () => {
    const name = uniqueName('fdl');
    const child = spawnNode(fixture('fd-limit.mjs'), [name], {}, [], { maxFds: 64 });
    const report = JSON.parse(await child.line('{'));
    expect(report.exhausted).toBeGreaterThan(0);
    expect(report.error).toBeUndefined();
    expect(report.left).toEqual([]);
    expect((await child.exited).code).toBe(0);
  });
});
