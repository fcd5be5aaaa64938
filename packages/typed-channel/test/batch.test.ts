// The batch APIs (sendMany / recvMany, and the packed sendPacked / recvPacked) and in-place reads, across processes:
// same guarantees as single messages.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type NodeChild, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { Channel, packMessages, packedCount, unpackMessages } from '../src/index.js';

const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const children: NodeChild[] = [];
const names: string[] = [];
function startChild(script: string, o: object): NodeChild {
  const c = spawnNode(fixture(script), [JSON.stringify(o)]);
  children.push(c);
  return c;
}
function named(prefix: string): string {
  const n = uniqueName(prefix);
  names.push(n);
  return n;
}
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGCONT');
    await c.kill('SIGKILL');
  }
  for (const n of names.splice(0)) {
    Channel.clearStorage(n);
    expect(shmObjects(n)).toEqual([]);
  }
});
const result = async (c: NodeChild) => JSON.parse((await c.line('result ', 120_000)).slice(7));

describe.each([
  ['arrays (sendMany / recvMany)', false],
  ['packed (sendPacked / recvPacked)', true],
])('batches across processes: %s', (_, packed) => {
  // Every fixture of this block uses the API under test.
  const start = (script: string, o: object) => startChild(script, { ...o, packed });
  it('2 senders x 2 receivers, sizes 0..70,000 mixed in each batch: everything once, in order, checksums intact', async () => {
    const name = named('b22');
    const channel = { capacity: 64 };
    const receivers = [0, 1].map(() => start('batch-receiver.mjs', { name, senders: 2, channel }));
    await Promise.all(receivers.map((r) => r.line('ready')));
    const sizes = [0, 1, 12, 64, 4127, 4128, 4129, 9000, 70_000, 300];
    const senders = [0, 1].map((id) => start('batch-sender.mjs', { name, id, batches: 20, batch: 10, sizes, waitRecv: 2, channel }));
    const results = await Promise.all(receivers.map(result));
    for (const r of results) {
      expect(r.errors).toEqual([]);
      expect(r.got).toBe(2 * 20 * 10);
      expect(r.maxBatch).toBeGreaterThan(1); // batches really arrive together
    }
    for (const s of senders) expect(await s.line('done')).toBe('done 200');
  });

  it('a sender SIGKILLed mid-batch: receivers get a prefix of whole messages and the channel goes on', async () => {
    const name = named('bkill');
    const channel = { capacity: 32 };
    const receiver = start('batch-receiver.mjs', { name, senders: 1, channel, idleMs: 3000, progressAt: 200 });
    await receiver.line('ready');
    const victim = start('batch-sender.mjs', { name, id: 0, forever: true, batch: 50, sizes: [10, 5000, 20_000, 100], waitRecv: 1, channel });
    await receiver.line('progress'); // a few batches are through: kill it mid-stream
    await victim.kill('SIGKILL');
    // A new sender finishes the run; the receiver sees whole messages only, the dead sender's in order.
    const next = start('batch-sender.mjs', { name, id: 1, batches: 2, batch: 5, sizes: [100], channel });
    expect(await next.line('done')).toBe('done 10');
    const r = await result(receiver);
    expect(r.errors.filter((e: string) => e.startsWith('bad message'))).toEqual([]);
    expect(r.errors).toEqual([]);
    expect(r.got).toBeGreaterThan(10);
  });

  it("'lag' mode with batches: a stopped receiver gets ERR_LIBIPC_LAGGED once with the count, then the oldest held", async () => {
    const name = named('blag');
    const channel = { capacity: 16, onFull: 'lag' };
    const receiver = start('batch-receiver.mjs', { name, senders: 2, channel, lag: true, progressAt: 1 });
    await receiver.line('ready');
    const sender = start('batch-sender.mjs', { name, id: 0, batches: 1, batch: 1, sizes: [16], waitRecv: 1, channel });
    await receiver.line('progress');
    await sender.exited;
    receiver.child.kill('SIGSTOP');
    const more = start('batch-sender.mjs', { name, id: 1, batches: 10, batch: 10, sizes: [16, 200], channel });
    await more.line('done');
    receiver.child.kill('SIGCONT');
    const r = await result(receiver);
    expect(r.errors).toEqual([]);
    expect(r.lagged).toHaveLength(1);
    expect(r.got + r.lagged[0]).toBe(1 + 100);
  });
});

describe('in-place reads', () => {
  it('a view of the ring, valid until the next receive; then detached (no stale bytes), also at close', () => {
    const name = named('inplace');
    const tx = new Channel(name, { capacity: 4, slotSize: 128 });
    const rx = new Channel(name, { mode: 'receiver' });
    for (const m of ['one', 'two', 'three']) expect(tx.trySend(m)).toBe(true);
    const a = rx.tryRecv({ copy: false })!;
    expect(Buffer.from(a).toString()).toBe('one');
    // While the view lives its slot is not handed back: the ring holds 4, one is held by the view.
    expect(tx.trySend('four')).toBe(true);
    expect(tx.trySend('five')).toBe(false);
    const b = rx.tryRecv({ copy: false })!;
    expect(a.byteLength).toBe(0); // detached by the next receive: never shows what a sender wrote since
    expect(() => a.slice()).toThrow(TypeError);
    expect(Buffer.from(b).toString()).toBe('two');
    const copied = rx.tryRecv()!;
    expect(b.byteLength).toBe(0);
    expect(Buffer.from(copied).toString()).toBe('three');
    const c = rx.tryRecv({ copy: false })!;
    expect(Buffer.from(c).toString()).toBe('four');
    rx.close();
    expect(c.byteLength).toBe(0); // and at close
    tx.close();
  });

  it("is refused in 'lag' mode (a sender could overwrite the slot mid-read)", async () => {
    const name = named('inlag');
    const rx = new Channel(name, { mode: 'receiver', onFull: 'lag', capacity: 8 });
    expect(() => rx.tryRecv({ copy: false })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    await expect(rx.recv({ copy: false, timeoutMs: 0 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    rx.close();
  });

  it('batch calls refuse bad input with coded errors', async () => {
    const name = named('bbad');
    const tx = new Channel(name);
    const rx = new Channel(name, { mode: 'receiver' });
    expect(() => tx.trySendMany('x' as unknown as string[])).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => tx.trySendMany([Buffer.from('ok'), 5 as unknown as string])).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    await expect(tx.sendMany([Buffer.alloc(17 * 1024 * 1024)])).rejects.toMatchObject({ code: 'ERR_LIBIPC_TOO_LARGE' });
    expect(() => rx.tryRecvMany(0)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(tx.trySendMany([])).toBe(0);
    expect(rx.tryRecvMany()).toEqual([]);
    tx.close();
    rx.close();
  });
});

describe('packed batches', () => {
  const text = (b: Uint8Array) => Buffer.from(b).toString();

  it('packMessages / unpackMessages round-trip bytes, strings and empty messages', () => {
    const batch = packMessages(['one', Buffer.alloc(0), new Uint8Array([1, 2, 3]), '']);
    expect(packedCount(batch)).toBe(4);
    expect([...batch.offsets]).toEqual([0, 3, 3, 6, 6]);
    expect(unpackMessages(batch).map((m) => [...m])).toEqual([[...Buffer.from('one')], [], [1, 2, 3], []]);
    expect(packedCount(packMessages([]))).toBe(0);
  });

  it('one call receives everything there, one-slot and fragmented messages alike, in order and aligned for recvMany', () => {
    const name = named('pk1');
    const tx = new Channel(name, { capacity: 64, slotSize: 128 });
    const rx = new Channel(name, { mode: 'receiver' });
    const sizes = [0, 1, 96, 97, 500, 3, 2000, 64];
    const messages = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    expect(tx.trySendPacked(packMessages(messages))).toBe(sizes.length);
    const got = rx.tryRecvPacked();
    expect(packedCount(got)).toBe(sizes.length);
    expect(unpackMessages(got)).toEqual(messages.map((m) => new Uint8Array(m)));
    expect(packedCount(rx.tryRecvPacked())).toBe(0);
    // The array API gets the same messages, each 8-byte aligned in its buffer.
    expect(tx.trySendMany(messages)).toBe(sizes.length);
    const many = rx.tryRecvMany(100);
    expect(many.map((m) => m.length)).toEqual(sizes);
    for (const m of many) expect(m.byteOffset % 8).toBe(0);
    // Bytes and strings mixed in one batch, the strings sent as UTF-8.
    expect(tx.trySendMany([Buffer.from('p'), 'q', new Uint8Array([114]), 'ß'])).toBe(4);
    expect(rx.tryRecvMany().map(text)).toEqual(['p', 'q', 'r', 'ß']);
    tx.close();
    rx.close();
  });

  it("a receiving handle's own messages are skipped in batches, the others' kept in order", () => {
    const name = named('pkself');
    const a = new Channel(name, { mode: 'receiver', capacity: 64, slotSize: 128 });
    const b = new Channel(name, { mode: 'receiver' });
    expect(a.trySendPacked(packMessages(['a1', 'a2']))).toBe(2);
    expect(b.trySendMany(['b1', 'x'.repeat(300), 'b3'])).toBe(3);
    expect(a.trySendMany(['a3'])).toBe(1);
    expect(b.trySendPacked(packMessages(['b4']))).toBe(1);
    expect(unpackMessages(a.tryRecvPacked()).map(text)).toEqual(['b1', 'x'.repeat(300), 'b3', 'b4']);
    expect(b.tryRecvMany(100).map(text)).toEqual(['a1', 'a2', 'a3']);
    a.close();
    b.close();
  });

  it('a fragmented message too large for the batch buffer ends the batch and comes alone next, then the rest', () => {
    const name = named('pk2');
    const tx = new Channel(name);
    const rx = new Channel(name, { mode: 'receiver' });
    const big = Buffer.alloc(300_000, 7);
    for (const m of ['a', big, 'b']) expect(tx.trySend(m)).toBe(true);
    const first = rx.tryRecvPacked();
    expect(unpackMessages(first).map(text)).toEqual(['a']);
    const second = rx.tryRecvPacked();
    expect(packedCount(second)).toBe(1);
    expect(Buffer.from(second.data).equals(big)).toBe(true);
    expect(unpackMessages(rx.tryRecvPacked()).map(text)).toEqual(['b']);
    tx.close();
    rx.close();
  });

  it('sendPacked waits for room in a full ring and delivers every message once, in order', async () => {
    const name = named('pk3');
    const tx = new Channel(name, { capacity: 4, slotSize: 128 });
    const rx = new Channel(name, { mode: 'receiver' });
    const messages = Array.from({ length: 200 }, (_, i) => `m${i}`);
    const sending = tx.sendPacked(packMessages(messages), { timeoutMs: 10_000 });
    const got: string[] = [];
    while (got.length < messages.length) got.push(...unpackMessages(await rx.recvPacked(7, { timeoutMs: 10_000 })).map(text));
    expect(await sending).toBe(200);
    expect(got).toEqual(messages);
    tx.close();
    rx.close();
  });

  it('sendMany keeps the batch it was given when the caller reuses its array while the rest waits for room', async () => {
    const name = named('pkreuse');
    const tx = new Channel(name, { capacity: 4, slotSize: 128 });
    const rx = new Channel(name, { mode: 'receiver' });
    const batch = Array.from({ length: 10 }, (_, i) => Buffer.from(`m${i}`));
    const sending = tx.sendMany(batch, { timeoutMs: 10_000 });
    batch.length = 0;
    batch.push(Buffer.from('other'));
    const got: string[] = [];
    while (got.length < 10) got.push(...(await rx.recvMany(3, { timeoutMs: 10_000 })).map(text));
    expect(await sending).toBe(10);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    tx.close();
    rx.close();
  });

  it('1,000 concurrent send, sendMany and sendPacked calls on a 4-slot ring: every message once, each call in order', async () => {
    const name = named('pkstorm');
    const tx = new Channel(name, { capacity: 4, slotSize: 128 });
    const rx = new Channel(name, { mode: 'receiver' });
    const calls = Array.from({ length: 1000 }, (_, c) => {
      const msgs = Array.from({ length: 1 + (c % 5) }, (_, i) => `${c}:${i}:${'x'.repeat((c * 7 + i) % 200)}`);
      if (c % 3 === 0) return tx.send(msgs[0]!, { timeoutMs: 30_000 }).then((ok) => (ok ? 1 : 0));
      return c % 3 === 1 ? tx.sendMany(msgs, { timeoutMs: 30_000 }) : tx.sendPacked(packMessages(msgs), { timeoutMs: 30_000 });
    });
    const expected = calls.reduce((n, _, c) => n + (c % 3 === 0 ? 1 : 1 + (c % 5)), 0);
    const got: string[] = [];
    while (got.length < expected) {
      const batch = unpackMessages(await rx.recvPacked(1 + (got.length % 9), { timeoutMs: 30_000 }));
      if (batch.length === 0) break;
      got.push(...batch.map(text));
    }
    expect(await Promise.all(calls)).toEqual(calls.map((_, c) => (c % 3 === 0 ? 1 : 1 + (c % 5))));
    expect(got).toHaveLength(expected);
    expect(new Set(got).size).toBe(expected); // none twice
    // Each call's messages arrive in its own order (calls may interleave with each other).
    const last = new Map<string, number>();
    for (const m of got) {
      const [c, i] = m.split(':');
      expect(Number(i)).toBe((last.get(c!) ?? -1) + 1);
      last.set(c!, Number(i));
    }
    expect(packedCount(rx.tryRecvPacked())).toBe(0);
    tx.close();
    rx.close();
  });

  it('recvPacked resolves an empty batch at its timeout and at close', async () => {
    const name = named('pk4');
    const rx = new Channel(name, { mode: 'receiver' });
    expect(packedCount(await rx.recvPacked(10, { timeoutMs: 20 }))).toBe(0);
    const waiting = rx.recvPacked(10);
    rx.close();
    expect(packedCount(await waiting)).toBe(0);
  });

  it('refuses bad packed batches with coded errors, before anything is sent', () => {
    const name = named('pkbad');
    const tx = new Channel(name, { maxMessageSize: 1000 });
    const rx = new Channel(name, { mode: 'receiver' });
    const data = new Uint8Array(10);
    const invalid = expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    for (const bad of [null, 'x', { data }, { data, offsets: [0, 1] }, { data: [1], offsets: Uint32Array.of(0, 1) }]) {
      expect(() => tx.trySendPacked(bad as never)).toThrow(invalid);
    }
    expect(() => tx.trySendPacked({ data, offsets: new Uint32Array(0) })).toThrow(invalid);
    expect(() => tx.trySendPacked({ data, offsets: Uint32Array.of(0, 5, 3) })).toThrow(invalid); // goes back
    expect(() => tx.trySendPacked({ data, offsets: Uint32Array.of(0, 11) })).toThrow(invalid); // past the end
    expect(() => tx.trySendPacked({ data: new Uint8Array(2000), offsets: Uint32Array.of(0, 10, 1500) })).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_TOO_LARGE' }),
    );
    expect(() => packMessages([Buffer.from('ok'), 5 as unknown as string])).toThrow(invalid);
    expect(() => rx.tryRecvPacked(0)).toThrow(invalid);
    expect(packedCount(rx.tryRecvPacked())).toBe(0); // nothing of the refused batches went out
    expect(tx.trySendPacked({ data, offsets: Uint32Array.of(0) })).toBe(0);
    tx.close();
    rx.close();
  });
});
