// One process, several handles: semantics, boundary sizes and bad input.
import { attachSegment } from '@libipc/shm';
import { describe, expect, it } from 'vitest';
import { closeAfterEach, shmObjects, uniqueName } from '../../../test/helpers.js';
import { Channel, Route } from '../src/index.js';

const track = closeAfterEach();

describe('Channel in one process', () => {
  it('delivers to receivers connected when it was sent, never to the sending handle', async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name));
    expect(await tx.send('nobody')).toBe(false);
    expect(tx.trySend('nobody')).toBe(false);
    const a = track(new Channel(name, { mode: 'receiver' }));
    expect(tx.recvCount).toBe(1);
    expect(await tx.send('one')).toBe(true);
    const b = track(new Channel(name, { mode: 'receiver' }));
    expect(await b.send('from b')).toBe(true);
    expect(Buffer.from((await a.recv())!).toString()).toBe('one');
    expect(Buffer.from((await a.recv())!).toString()).toBe('from b');
    // b joined after 'one' and does not get its own message.
    expect(await b.recv({ timeoutMs: 50 })).toBeUndefined();
    expect(a.tryRecv()).toBeUndefined();
  });

  it('recv waits for a message and resolves undefined on timeout and on close', async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name));
    const rx = track(new Channel(name, { mode: 'receiver' }));
    const pending = rx.recv({ timeoutMs: 10_000 });
    setTimeout(() => void tx.send('late'), 20);
    expect(Buffer.from((await pending)!).toString()).toBe('late');
    expect(await rx.recv({ timeoutMs: 30 })).toBeUndefined();
    const forever = rx.recv();
    rx.close();
    expect(await forever).toBeUndefined();
    await expect(rx.recv()).rejects.toMatchObject({ code: 'ERR_LIBIPC_CLOSED' });
    await expect(tx.recv()).rejects.toMatchObject({ code: 'ERR_LIBIPC_ILLEGAL_STATE' });
  });

  it('a receive that sleeps past the 1 s re-check slice still gets a later message, and ends at its own timeout', async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name));
    const rx = track(new Channel(name, { mode: 'receiver', spinUs: 0 }));
    // The message comes after the first slice ran out: the receiver re-armed its slice and was rung again.
    const pending = rx.recv({ timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 1300));
    expect(await tx.send('after a slice')).toBe(true);
    expect(Buffer.from((await pending)!).toString()).toBe('after a slice');
    // Two slices and a remainder, then undefined at the timeout (not at a slice's end).
    const t0 = performance.now();
    expect(await rx.recv({ timeoutMs: 2300 })).toBeUndefined();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(2250);
  }, 15_000);

  it('async iteration ends when the handle closes', async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name));
    const rx = track(new Channel(name, { mode: 'receiver' }));
    for (let i = 0; i < 5; i++) await tx.send(`m${i}`);
    const seen: string[] = [];
    for await (const m of rx) {
      seen.push(Buffer.from(m).toString());
      if (seen.length === 5) setTimeout(() => rx.close(), 10);
    }
    expect(seen).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('waitForRecv resolves when enough receivers connect, false at the timeout', async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name));
    expect(await tx.waitForRecv(1, { timeoutMs: 30 })).toBe(false);
    const waiting = tx.waitForRecv(2, { timeoutMs: 10_000 });
    track(new Channel(name, { mode: 'receiver' }));
    setTimeout(() => track(new Channel(name, { mode: 'receiver' })), 20);
    expect(await waiting).toBe(true);
    expect(tx.recvCount).toBe(2);
  });

  it('carries boundary sizes whole: 0, slot payload -1/0/+1, 64 KiB and a multi-MiB message larger than the ring', async () => {
    const name = uniqueName('chan');
    const slotSize = 4096;
    const payload = slotSize - 32;
    const tx = track(new Channel(name, { capacity: 64, slotSize }));
    const rx = track(new Channel(name, { mode: 'receiver' }));
    const sizes = [0, 1, payload - 1, payload, payload + 1, 2 * payload, 64 * 1024, 3 * 1024 * 1024 + 7];
    for (const size of sizes) {
      const msg = Buffer.alloc(size);
      for (let i = 0; i < size; i++) msg[i] = (i * 7 + size) & 255;
      const [sent, got] = await Promise.all([tx.send(msg, { timeoutMs: 20_000 }), rx.recv({ timeoutMs: 20_000 })]);
      expect(sent).toBe(true);
      expect(got?.length, `size ${size}`).toBe(size);
      expect(Buffer.compare(Buffer.from(got!), msg), `content of size ${size}`).toBe(0);
    }
  });

  it('carries a message of the default maxMessageSize (16 MiB), 8 times larger than the default ring', async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name));
    const rx = track(new Channel(name, { mode: 'receiver' }));
    expect(tx.maxMessageSize).toBe(16 * 1024 * 1024);
    const msg = Buffer.alloc(tx.maxMessageSize);
    for (let i = 0; i < msg.length; i += 4096) msg[i] = (i >> 12) & 255;
    const [sent, got] = await Promise.all([tx.send(msg, { timeoutMs: 30_000 }), rx.recv({ timeoutMs: 30_000 })]);
    expect(sent).toBe(true);
    expect(Buffer.compare(Buffer.from(got!), msg)).toBe(0);
  });

  it('received messages stay intact while later ones arrive (pooled views do not overlap)', async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name, { capacity: 1024 }));
    const rx = track(new Channel(name, { mode: 'receiver' }));
    const got: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      expect(tx.trySend(Buffer.alloc(1 + (i % 97) * 41, i & 255))).toBe(true);
      if (i % 3 === 2) for (let m = rx.tryRecv(); m; m = rx.tryRecv()) got.push(m);
    }
    for (let m = rx.tryRecv(); m; m = rx.tryRecv()) got.push(m);
    expect(got).toHaveLength(300);
    got.forEach((m, i) => {
      expect(m.length).toBe(1 + (i % 97) * 41);
      expect(m.every((b) => b === (i & 255))).toBe(true);
    });
  });

  it('refuses a message over maxMessageSize with ERR_LIBIPC_TOO_LARGE and goes on', async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name, { maxMessageSize: 1000 }));
    const rx = track(new Channel(name, { mode: 'receiver' }));
    expect(await tx.send(Buffer.alloc(1000))).toBe(true);
    await expect(tx.send(Buffer.alloc(1001))).rejects.toMatchObject({ code: 'ERR_LIBIPC_TOO_LARGE' });
    expect(() => tx.trySend(Buffer.alloc(1001))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_TOO_LARGE' }));
    expect((await rx.recv())?.length).toBe(1000);
  });

  it('refuses bad input with the error of the table, never a crash', async () => {
    const name = uniqueName('chan');
    const bad = (fn: () => unknown, code: string) => expect(fn).toThrow(expect.objectContaining({ code }));
    bad(() => new Channel(''), 'ERR_LIBIPC_INVALID_NAME');
    bad(() => new Channel('a/b'), 'ERR_LIBIPC_INVALID_NAME');
    bad(() => new Channel('x'.repeat(64)), 'ERR_LIBIPC_INVALID_NAME');
    bad(() => new Channel(42 as unknown as string), 'ERR_LIBIPC_INVALID_NAME');
    bad(() => new Channel(name, { capacity: 0 }), 'ERR_LIBIPC_INVALID_ARGUMENT');
    bad(() => new Channel(name, { capacity: 1.5 }), 'ERR_LIBIPC_INVALID_ARGUMENT');
    bad(() => new Channel(name, { slotSize: 100 }), 'ERR_LIBIPC_INVALID_ARGUMENT');
    bad(() => new Channel(name, { onFull: 'drop' as 'lag' }), 'ERR_LIBIPC_INVALID_ARGUMENT');
    bad(() => new Channel(name, { mode: 'both' as 'sender' }), 'ERR_LIBIPC_INVALID_ARGUMENT');
    bad(() => new Channel(name, { spinUs: -1 }), 'ERR_LIBIPC_INVALID_ARGUMENT');
    bad(() => new Channel(name, { onFull: 'lag', capacity: 4, maxMessageSize: 1 << 20 }), 'ERR_LIBIPC_INVALID_ARGUMENT');
    expect(shmObjects(name)).toEqual([]);
    const tx = track(new Channel(name));
    track(new Channel(name, { mode: 'receiver' }));
    for (const data of [42, null, undefined, {}, [1, 2], new Uint16Array(2)]) {
      await expect(tx.send(data as unknown as Uint8Array)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    }
    await expect(tx.send('x', { timeoutMs: -1 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    bad(() => new Channel(name, { capacity: 7 }), 'ERR_LIBIPC_INCOMPATIBLE');
    bad(() => new Route(name), 'ERR_LIBIPC_INCOMPATIBLE');
  });

  it('null options mean "default" everywhere; a non-object, a typo or a wrong type is refused naming the option', async () => {
    const name = uniqueName('opts');
    // null for every option: the defaults, and joining the existing channel works (it used to leak the segment).
    const nulls = { capacity: null, slotSize: null, maxMessageSize: null, onFull: null, spinUs: null, mode: null } as unknown as object;
    const a = track(new Channel(name, nulls));
    const b = track(new Channel(name, { ...nulls, mode: 'receiver' } as object));
    expect([a.capacity, a.slotSize, a.onFull]).toEqual([b.capacity, b.slotSize, 'wait']);
    track(new Channel(name, null as unknown as object));
    expect(() => new Channel(name, 5 as unknown as object)).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringContaining('must be an object') }),
    );
    expect(() => new Channel(name, { capacitty: 8 } as object)).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringContaining("did you mean 'capacity'") }),
    );
    await expect(b.recv(100 as unknown as object)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    expect(a.trySend('m')).toBe(true);
    expect(Buffer.from((await b.recv({ timeoutMs: null } as unknown as object))!).toString()).toBe('m');
    await expect(a.send('x', { timeoutMs: 3e9 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    await expect(a.waitForRecv(1, 'soon' as unknown as object)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    for (const h of [a, b]) h.close();
    Channel.clearStorage(name);
    expect(shmObjects(name)).toEqual([]);
  });

  it('refuses a handle beyond the 128 of one channel with ERR_LIBIPC_REGISTRY_FULL', () => {
    const name = uniqueName('full');
    const handles = Array.from({ length: 128 }, (_, i) => track(new Channel(name, { mode: i % 2 ? 'receiver' : 'sender' })));
    expect(handles[0]!.recvCount).toBe(64);
    expect(() => new Channel(name)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_REGISTRY_FULL' }));
    handles.pop()!.close();
    track(new Channel(name));
  });

  it('refuses a segment of another layout version with ERR_LIBIPC_INCOMPATIBLE', () => {
    const name = uniqueName('chan');
    const other = attachSegment({ kind: 'chan', name, layoutVersion: 999, size: 64 * 1024 });
    try {
      expect(() => new Channel(name)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    } finally {
      other.header.lock.lockSync(1000);
      other.header.retire();
      other.header.lock.unlock();
      other.mem.close();
    }
    expect(shmObjects(name)).toEqual([]);
  });

  it('removes its object from /dev/shm when the last handle closes, and clearStorage removes leftovers', () => {
    const name = uniqueName('chan');
    const a = new Channel(name, { mode: 'receiver' });
    const b = new Channel(name);
    // The segment, and the receiver's doorbell FIFO.
    expect(shmObjects(name).sort()).toEqual([`libipc.chan.${name}`, `libipc.chanbell.${name}.0`]);
    a.close();
    expect(shmObjects(name)).toEqual([`libipc.chan.${name}`]);
    b.close();
    b.close();
    expect(shmObjects(name)).toEqual([]);
    expect(() => b.trySend('x')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_CLOSED' }));
    const c = new Channel(name, { mode: 'receiver' });
    expect(shmObjects(name)).toHaveLength(2);
    Channel.clearStorage(name);
    expect(shmObjects(name)).toEqual([]);
    c.close(); // its segment was already removed: closing is still fine
    expect(shmObjects(name)).toEqual([]);
  });

  it("'wait' mode: send waits for room and times out with ERR_LIBIPC_TIMEOUT; nobody is disconnected", async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name, { capacity: 4 }));
    const rx = track(new Channel(name, { mode: 'receiver' }));
    for (let i = 0; i < 4; i++) expect(tx.trySend(`m${i}`)).toBe(true);
    expect(tx.trySend('full')).toBe(false);
    await expect(tx.send('m4', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_TIMEOUT' });
    expect(tx.recvCount).toBe(1);
    const later = tx.send('m4', { timeoutMs: 10_000 });
    expect(Buffer.from((await rx.recv())!).toString()).toBe('m0');
    expect(await later).toBe(true);
    const rest: string[] = [];
    for (let i = 0; i < 4; i++) rest.push(Buffer.from((await rx.recv())!).toString());
    expect(rest).toEqual(['m1', 'm2', 'm3', 'm4']);
  });

  it("'lag' mode: the sender overwrites, the receiver gets ERR_LIBIPC_LAGGED once with the count, then the oldest held", async () => {
    const name = uniqueName('chan');
    const tx = track(new Channel(name, { capacity: 8, onFull: 'lag' }));
    const rx = track(new Channel(name, { mode: 'receiver' }));
    for (let i = 0; i < 20; i++) expect(await tx.send(`m${i}`)).toBe(true);
    await expect(rx.recv()).rejects.toMatchObject({ code: 'ERR_LIBIPC_LAGGED', missed: 12 });
    const rest: string[] = [];
    for (let i = 0; i < 8; i++) rest.push(Buffer.from((await rx.recv())!).toString());
    expect(rest).toEqual(Array.from({ length: 8 }, (_, i) => `m${i + 12}`));
    expect(await rx.recv({ timeoutMs: 20 })).toBeUndefined();
  });

  it('Route: one sender at a time; receivers cannot send', async () => {
    const name = uniqueName('route');
    const tx = track(new Route(name));
    expect(() => new Route(name)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_EXISTS' }));
    const rx = track(new Route(name, { mode: 'receiver' }));
    expect(() => rx.trySend('x')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_ILLEGAL_STATE' }));
    expect(await tx.send('hi')).toBe(true);
    expect(Buffer.from((await rx.recv())!).toString()).toBe('hi');
    tx.close();
    const tx2 = track(new Route(name));
    expect(await tx2.send('again')).toBe(true);
    expect(Buffer.from((await rx.recv())!).toString()).toBe('again');
  });
});
