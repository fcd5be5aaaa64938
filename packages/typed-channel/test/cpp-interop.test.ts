// Layout conformance, tested: a C++ program built with plain g++ against the public headers (libipc/channel.h)
// and this package's Node Channel share channels both ways: sizes 0 B to 1 MiB (fragmented and streamed),
// batches, 'lag' mode, doorbell wake-ups of a sleeping receiver, and a C++ sender SIGKILLed mid-stream.
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CppChild, compileCpp, fnv1a, noCompiler, pattern, spawnCpp } from '../../../test/cpp.js';
import { shmObjects, uniqueName } from '../../../test/helpers.js';
import { SharedMemory } from '@libipc/shm';
import { Channel, inspectChannel, LaggedError } from '../src/index.js';
import { native } from '../src/native.js';

const source = fileURLToPath(new URL('./cpp/channel-peer.cc', import.meta.url));
let peer: { bin: string; remove(): void } | undefined;
const children: CppChild[] = [];
const handles: Array<{ close(): void }> = [];
const names: string[] = [];

function named(prefix: string): string {
  const name = uniqueName(prefix);
  names.push(name);
  return name;
}
function track<T extends { close(): void }>(h: T): T {
  handles.push(h);
  return h;
}
function start(...args: string[]): CppChild {
  const c = spawnCpp(peer!.bin, args);
  children.push(c);
  return c;
}

// One slot's payload with the default slotSize (4160 - 32): 4128 fits one slot, 4129 needs two.
const SIZES = [0, 1, 100, 4128, 4129, 65_536, 1 << 20];
// A 64-slot ring holds 264 KiB: 1 MiB is streamed in fragments as room appears.
const SMALL = { capacity: 64 };

/** Polls a condition of the shared segment (bounded): used only to learn that a peer is asleep or blocked. */
async function until(what: string, test: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!test()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function sleepingReceivers(name: string): number {
  const mem = SharedMemory.open(name, { kind: 'chan' });
  try {
    return new Uint32Array(mem.buffer)[native().layout.recvSleepers / 4]!;
  } finally {
    mem.close();
  }
}

/** The "msg i len hash" lines a C++ receiver printed. */
function received(c: CppChild): Array<[number, number, number]> {
  return c.lines.filter((l) => l.startsWith('msg ')).map((l) => l.split(' ').slice(1).map(Number) as [number, number, number]);
}

describe.skipIf(noCompiler !== undefined)(`C++ client ↔ Node channel${noCompiler ? ` (skipped: ${noCompiler})` : ''}`, () => {
  beforeAll(() => {
    peer = compileCpp(source);
  });
  afterAll(() => peer?.remove());
  afterEach(async () => {
    for (const c of children.splice(0)) await c.kill('SIGKILL');
    for (const h of handles.splice(0)) h.close();
    for (const name of names.splice(0)) expect(shmObjects(name), name).toEqual([]);
  });

  it('C++ sender → Node receiver: 0 B to 1 MiB, fragmented and streamed, in order and intact', async () => {
    const name = named('cx-c2n');
    const rx = track(new Channel(name, { mode: 'receiver', ...SMALL }));
    const tx = start('send', name, SIZES.join(','));
    for (const [i, n] of SIZES.entries()) {
      const m = await rx.recv({ timeoutMs: 30_000 });
      expect(m?.length, `message ${i}`).toBe(n);
      expect(fnv1a(m!), `message ${i}`).toBe(fnv1a(pattern(i, n)));
    }
    expect(await tx.line('sent ')).toBe(`sent ${SIZES.length}`);
    expect(await tx.exited).toEqual({ code: 0, signal: null });
  });

  it('Node sender → C++ receiver: 0 B to 1 MiB, fragmented and streamed, in order and intact', async () => {
    const name = named('cx-n2c');
    const tx = track(new Channel(name, SMALL));
    const rx = start('recv', name, String(SIZES.length));
    await rx.line('ready');
    expect(await tx.waitForRecv(1, { timeoutMs: 20_000 })).toBe(true);
    for (const [i, n] of SIZES.entries()) expect(await tx.send(pattern(i, n), { timeoutMs: 30_000 })).toBe(true);
    await rx.line('done');
    expect(received(rx)).toEqual(SIZES.map((n, i) => [i, n, fnv1a(pattern(i, n))]));
    expect(await rx.exited).toEqual({ code: 0, signal: null });
  });

  it('batches both ways: C++ send_many → Node recvMany, Node sendMany → C++ recv_many', async () => {
    const sizes = Array.from({ length: 300 }, (_, i) => (i * 37) % 200);
    const a = named('cx-batch1');
    const rx = track(new Channel(a, { mode: 'receiver' }));
    const tx = start('send', a, sizes.join(','), 'batch');
    const got: Uint8Array[] = [];
    while (got.length < sizes.length) got.push(...(await rx.recvMany(64, { timeoutMs: 30_000 })));
    expect(got.map((m, i) => fnv1a(m) === fnv1a(pattern(i, sizes[i]!)) && m.length === sizes[i])).not.toContain(false);
    expect(await tx.line('sent ')).toBe(`sent ${sizes.length}`);

    const b = named('cx-batch2');
    const ntx = track(new Channel(b));
    const crx = start('recv-batch', b, String(sizes.length));
    await crx.line('ready');
    expect(await ntx.waitForRecv(1, { timeoutMs: 20_000 })).toBe(true);
    expect(await ntx.sendMany(sizes.map((n, i) => pattern(i, n)), { timeoutMs: 30_000 })).toBe(sizes.length);
    await crx.line('done');
    expect(received(crx)).toEqual(sizes.map((n, i) => [i, n, fnv1a(pattern(i, n))]));
  });

  it("'lag' mode both ways: a receiver that fell behind learns how many it missed, then reads on intact", async () => {
    const count = 100;
    const sizes = Array.from({ length: count }, () => 64);
    // C++ sends into a 16-slot lag ring that the Node receiver does not read until the sender is done.
    const a = named('cx-lag1');
    const rx = track(new Channel(a, { mode: 'receiver', onFull: 'lag', capacity: 16 }));
    const tx = start('send', a, sizes.join(','));
    expect(await tx.line('sent ')).toBe(`sent ${count}`);
    await expect(rx.recv({ timeoutMs: 5000 })).rejects.toBeInstanceOf(LaggedError);
    const rest: Uint8Array[] = [];
    for (let m = rx.tryRecv(); m !== undefined; m = rx.tryRecv()) rest.push(m);
    expect(rest.length).toBeGreaterThan(0);
    const first = count - rest.length;
    expect(rest.map((m, k) => fnv1a(m) === fnv1a(pattern(first + k, 64)))).not.toContain(false);

    // Node sends into a C++ lag receiver that starts reading only after the sender is done.
    const b = named('cx-lag2');
    const crx = start('recv', b, String(count), 'lag', 'go');
    await crx.line('ready');
    const ntx = track(new Channel(b));
    expect(await ntx.waitForRecv(1, { timeoutMs: 20_000 })).toBe(true);
    for (let i = 0; i < count; i++) expect(await ntx.send(pattern(i, 64))).toBe(true);
    crx.tell('go');
    await crx.line('done');
    const lag = crx.lines.find((l) => l.startsWith('lagged '));
    expect(lag).toBeDefined();
    const msgs = received(crx);
    expect(msgs.length).toBeGreaterThan(0);
    for (const [i, n, h] of msgs) expect([n, h]).toEqual([64, fnv1a(pattern(i, 64))]);
    expect(msgs.at(-1)![0]).toBe(count - 1);
  });

  it('a Node receiver asleep on its doorbell is woken by a C++ send, and a C++ receiver by a Node send', async () => {
    const a = named('cx-wake1');
    const rx = track(new Channel(a, { mode: 'receiver', spinUs: 0 }));
    const pending = rx.recv({ timeoutMs: 30_000 });
    const tx = start('send-when-asleep', a, '10');
    const m = await pending;
    expect(m && fnv1a(m)).toBe(fnv1a(pattern(0, 10)));
    await tx.line('sent 1');

    const b = named('cx-wake2');
    const crx = start('recv', b, '1');
    await crx.line('ready');
    const ntx = track(new Channel(b));
    await until('the C++ receiver sleeps on its doorbell', () => sleepingReceivers(b) > 0);
    expect(await ntx.send(pattern(0, 10))).toBe(true);
    await crx.line('done');
    expect(received(crx)).toEqual([[0, 10, fnv1a(pattern(0, 10))]]);
  });

  it('a C++ sender SIGKILLed mid-stream (holding the send lock) does not wedge the Node side', async () => {
    const name = named('cx-kill');
    const rx = track(new Channel(name, { mode: 'receiver', capacity: 8 }));
    const tx = start('stall', name);
    await tx.line('streaming');
    // The ring is full of the 1 MiB message's first fragments and the C++ sender sleeps holding the send lock.
    await until('the C++ sender filled the ring', () => inspectChannel(name).fill === 1);
    await tx.kill('SIGKILL');
    const ntx = track(new Channel(name));
    const sent = ntx.send('after the crash', { timeoutMs: 20_000 });
    const m = await rx.recv({ timeoutMs: 20_000 });
    expect(await sent).toBe(true);
    expect(Buffer.from(m!).toString()).toBe('after the crash');
    // The dead sender's row is reaped: only the two Node handles remain.
    expect(inspectChannel(name).handles.filter((h) => h.alive)).toHaveLength(2);
  });
});
