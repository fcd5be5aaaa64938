// inspectChannel: geometry, handles with their liveness and doorbells, read without joining.
import { describe, expect, it } from 'vitest';
import { shmObjects, uniqueName } from '../../../test/helpers.js';
import { Channel, channelBells, inspectChannel } from '../src/index.js';

describe('inspectChannel', () => {
  it('lists the handles of a channel and its doorbells, and changes nothing', async () => {
    const name = uniqueName('cinsp');
    const rx = new Channel(name, { mode: 'receiver', capacity: 16 });
    const tx = new Channel(name);
    try {
      await tx.send('x');
      const snap = inspectChannel(name);
      expect(snap).toMatchObject({ name, type: 'channel', onFull: 'wait', capacity: 16, messages: 1n, state: 'ready' });
      expect(snap.handles.map((h) => [h.role, h.pid, h.alive])).toEqual([
        ['receiver', process.pid, true],
        ['sender', process.pid, true],
      ]);
      expect(snap.handles[0]!.active).toBe(true);
      expect(snap.bells).toEqual([`libipc.chanbell.${name}.0`]);
      expect(channelBells(name)).toEqual(snap.bells);
      expect(tx.recvCount).toBe(1);
      expect(Buffer.from((await rx.recv({ timeoutMs: 1000 }))!).toString()).toBe('x');
    } finally {
      tx.close();
      rx.close();
    }
    expect(shmObjects(name)).toEqual([]);
    expect(() => inspectChannel(name)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
  });
});

describe('inspectChannel: fill level and missed messages', () => {
  it('reports how full the ring is for the slowest receiver and how many messages lagging receivers missed', () => {
    const name = uniqueName('fill');
    const tx = new Channel(name, { capacity: 8, onFull: 'lag' });
    const rx = new Channel(name, { mode: 'receiver' });
    try {
      for (let i = 0; i < 6; i++) tx.trySend('x');
      expect(inspectChannel(name)).toMatchObject({ fill: 6 / 8, missed: 0n });
      for (let i = 0; i < 20; i++) tx.trySend('y');
      expect(() => rx.tryRecv()).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_LAGGED' }));
      const after = inspectChannel(name);
      expect(after.missed).toBeGreaterThan(0n);
      expect(after.handles.find((h) => h.role === 'receiver')!.missed).toBe(after.missed);
    } finally {
      tx.close();
      rx.close();
    }
  });
});
