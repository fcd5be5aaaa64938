// shm ls / shm clean against a live channel and a crashed one: leftovers go, the live channel keeps working.
import { describe, expect, it } from 'vitest';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { FIXTURES, cli } from './support.js';

describe('libipc shm ls / shm clean', () => {
  it('lists objects with their users, removes only those whose every user is dead', async () => {
    const liveName = uniqueName('clilive');
    const deadName = uniqueName('clidead');
    const live = spawnNode(`${FIXTURES}channel.mjs`, [liveName, 'receive']);
    const crashed = spawnNode(`${FIXTURES}channel.mjs`, [deadName, 'receive']);
    try {
      await Promise.all([live.line('ready'), crashed.line('ready')]);
      await crashed.kill('SIGKILL');
      // What the crashed run left: its channel segment and its receiver's doorbell.
      expect(shmObjects(deadName).sort()).toEqual([`libipc.chan.${deadName}`, `libipc.chanbell.${deadName}.0`]);

      // Scoped to this test's two channels: other tests running meanwhile keep their own abandoned objects.
      const ours = `{${liveName},${deadName}}`;
      const ls = await cli(['shm', 'ls', ours, '--json']);
      expect(ls.code, ls.stderr).toBe(0);
      const objects = JSON.parse(ls.stdout) as Array<{ object: string; kind: string; users: Array<{ pid: number; alive: boolean }>; inUse: boolean; removable: boolean; size: number }>;
      const liveSeg = objects.find((o) => o.object === `libipc.chan.${liveName}`)!;
      expect(liveSeg).toMatchObject({ kind: 'chan', inUse: true, removable: false });
      expect(liveSeg.users).toContainEqual(expect.objectContaining({ pid: live.child.pid, alive: true }));
      const deadSeg = objects.find((o) => o.object === `libipc.chan.${deadName}`)!;
      expect(deadSeg).toMatchObject({ kind: 'chan', inUse: false, removable: true });
      expect(deadSeg.users).toContainEqual(expect.objectContaining({ pid: crashed.child.pid, alive: false }));
      expect(deadSeg.size).toBeGreaterThan(0);
      expect(objects.every((o) => o.object.includes(liveName) || o.object.includes(deadName))).toBe(true);
      const table = await cli(['shm', 'ls', ours]);
      expect(table.stdout).toMatch(new RegExp(`libipc\\.chan\\.${deadName}\\s+chan .*${crashed.child.pid} receiver dead.*abandoned`));
      expect(table.stdout).toMatch(new RegExp(`libipc\\.chan\\.${liveName}\\s+chan .*${live.child.pid} receiver alive.*in use`));

      const dry = await cli(['shm', 'clean', ours, '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain(`would remove libipc.chan.${deadName}`);
      expect(shmObjects(deadName)).toHaveLength(2);

      const clean = await cli(['shm', 'clean', ours]);
      expect(clean.code, clean.stderr).toBe(0);
      expect(clean.stdout).toContain(`removed libipc.chan.${deadName}`);
      expect(clean.stdout).toContain(`removed libipc.chanbell.${deadName}.0`);
      expect(clean.stdout).not.toContain(liveName);
      expect(shmObjects(deadName)).toEqual([]);
      expect(shmObjects(liveName).length).toBeGreaterThan(0);

      // The live channel still works: a new sender reaches the receiver that was there all along.
      const sender = spawnNode(`${FIXTURES}channel.mjs`, [liveName, 'send', 'still-here']);
      await sender.line('sent');
      await sender.exited;
      await live.line('got still-here');
    } finally {
      await live.kill('SIGTERM');
      await crashed.kill();
    }
    expect(shmObjects(liveName)).toEqual([]);
  });

  it('a bad pattern is a coded error', async () => {
    const r = await cli(['shm', 'clean', 'a b']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ERR_LIBIPC_INVALID_ARGUMENT');
  });

  it('keeps a plain segment that a live process maps (created atomically, it shows in /proc maps by inode only); removes it once that process is dead', async () => {
    const name = uniqueName('cliplain');
    const owner = spawnNode(`${FIXTURES}plain-segment.mjs`, [name]);
    try {
      await owner.line('ready');
      const clean = await cli(['shm', 'clean', name]);
      expect(clean.code, clean.stderr).toBe(0);
      expect(clean.stdout).not.toContain(`removed libipc.shm.${name}`);
      expect(shmObjects(name)).toEqual([`libipc.shm.${name}`]);
      const ls = JSON.parse((await cli(['shm', 'ls', '--json'])).stdout) as Array<{ object: string; inUse: boolean; users: Array<{ pid: number }> }>;
      expect(ls.find((o) => o.object === `libipc.shm.${name}`)).toMatchObject({ inUse: true, users: [expect.objectContaining({ pid: owner.child.pid })] });
    } finally {
      await owner.kill('SIGKILL');
    }
    const after = await cli(['shm', 'clean', name]);
    expect(after.stdout).toContain(`removed libipc.shm.${name}`);
    expect(shmObjects(name)).toEqual([]);
  });
});
