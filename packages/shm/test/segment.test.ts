import { statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedMemory, wake } from '../src/index.js';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { fixture } from './fixtures.js';

const opened: SharedMemory[] = [];
const track = (m: SharedMemory) => (opened.push(m), m);
let name = '';

afterEach(() => {
  for (const m of opened.splice(0)) m.close();
  if (name) SharedMemory.unlink(name);
  expect(shmObjects(name)).toEqual([]);
});

describe('SharedMemory', () => {
  it('lets two processes see each other’s writes through the same name', async () => {
    name = uniqueName('seg');
    const mem = track(SharedMemory.create(name, 4096));
    expect(mem.created).toBe(true);
    const words = new Int32Array(mem.buffer);

    // This process writes, another reads.
    const reader = spawnNode(fixture('reader.mjs'), [name]);
    await reader.line('waiting');
    Atomics.store(words, 0, 4242);
    wake(mem, 0);
    expect(await reader.line('value')).toBe('value 4242');
    await reader.exited;

    const other = spawnNode(fixture('writer.mjs'), [name, '77']);
    await other.line('written');
    await other.exited;
    // Another process writes, this one reads.
    expect(Atomics.load(words, 0)).toBe(77);
  });

  it('creates segments with mode 0600 unless asked otherwise', () => {
    name = uniqueName('mode');
    track(SharedMemory.create(name, 4096));
    expect(statSync(`/dev/shm/libipc.shm.${name}`).mode & 0o777).toBe(0o600);
    const other = uniqueName('mode');
    track(SharedMemory.create(other, 4096, { mode: 0o640 }));
    expect(statSync(`/dev/shm/libipc.shm.${other}`).mode & 0o777).toBe(0o640);
    SharedMemory.unlink(other);
  });

  it('opens at the existing size, never resizes, and openOrCreate joins an existing segment', () => {
    name = uniqueName('size');
    const a = track(SharedMemory.openOrCreate(name, 8192));
    const b = track(SharedMemory.openOrCreate(name, 100));
    expect([a.created, b.created]).toEqual([true, false]);
    expect(b.size).toBe(8192);
    expect(track(SharedMemory.open(name)).size).toBe(8192);
    expect(SharedMemory.exists(name)).toBe(true);
    expect(SharedMemory.list('shm')).toContain(name);
    expect(SharedMemory.unlink(name)).toBe(true);
    expect(SharedMemory.exists(name)).toBe(false);
    expect(SharedMemory.unlink(name)).toBe(false);
    // The mapping outlives the name.
    new Uint8Array(a.buffer)[0] = 1;
    expect(new Uint8Array(b.buffer)[0]).toBe(1);
  });

  it('detaches the buffer on close: old views read nothing, new views are a TypeError, close is idempotent', () => {
    name = uniqueName('close');
    const mem = SharedMemory.create(name, 4096);
    const buf = mem.buffer;
    const view = new Uint8Array(buf);
    view[0] = 9;
    mem.close();
    mem.close();
    expect(buf.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(() => new Uint8Array(buf, 0, 1)).toThrow(TypeError);
    expect(() => mem.buffer).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_CLOSED' }));
  });
});
