// inspectSegment / withSegment / listObjects: a look at /dev/shm that changes nothing.
import { execFileSync } from 'node:child_process';
import { unlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/helpers.js';
import { attachSegment, inspectSegment, listObjects, parseObjectName, SharedMemory, withSegment } from '../src/index.js';

describe('inspect', () => {
  it('reads a segment header without joining or changing it', () => {
    const name = uniqueName('insp');
    const { mem } = attachSegment({ kind: 'shm', name, layoutVersion: 3, size: 4096 });
    try {
      const before = Buffer.from(mem.buffer).toString('hex');
      const info = inspectSegment(`libipc.shm.${name}`);
      expect(info).toMatchObject({ kind: 'shm', name, type: 'segment', size: 4096 });
      expect(info.header).toMatchObject({ layoutVersion: 3, state: 'ready', kind: 'shm', creator: { pid: process.pid, alive: true } });
      expect(info.problem).toBeUndefined();
      expect(withSegment('shm', name, (_m, h) => h.layoutVersion)).toBe(3);
      expect(Buffer.from(mem.buffer).toString('hex')).toBe(before);
      expect(listObjects()).toContain(`libipc.shm.${name}`);
    } finally {
      mem.close();
      SharedMemory.unlink(name);
    }
  });

  it('reports what it cannot read instead of throwing, and refuses bad names with coded errors', () => {
    const name = uniqueName('inspraw');
    const raw = SharedMemory.create(name, 256); // no libipc header
    try {
      expect(inspectSegment(`libipc.shm.${name}`).problem).toMatch(/no libipc header/);
      expect(() => withSegment('shm', name, () => 1)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    } finally {
      raw.close();
      SharedMemory.unlink(name);
    }
    const fifo = `/dev/shm/libipc.chanbell.${uniqueName('inspf')}.0`;
    execFileSync('mkfifo', [fifo]);
    expect(inspectSegment(fifo.slice('/dev/shm/'.length))).toMatchObject({ type: 'fifo', kind: 'chanbell' });
    unlinkSync(fifo);
    expect(() => inspectSegment('not-ours')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => inspectSegment('libipc.shm.absent-x')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
    expect(parseObjectName('libipc.chan.a.b')).toEqual({ kind: 'chan', name: 'a.b' });
  });
});
