// Real processes: many senders and receivers, crashes (SIGKILL), stops (SIGSTOP) and churn.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type NodeChild, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { Channel, Route } from '../src/index.js';

const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const children: NodeChild[] = [];
const handles: Array<{ close(): void }> = [];
function start(script: string, ...args: unknown[]): NodeChild {
  const c = spawnNode(fixture(script), args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))));
  children.push(c);
  return c;
}
function track<T extends { close(): void }>(h: T): T {
  handles.push(h);
  return h;
}
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGCONT');
    await c.kill('SIGKILL');
  }
  for (const h of handles.splice(0)) h.close();
  // Every test leaves nothing behind once all its handles and processes are gone.
  for (const name of names.splice(0)) expect(shmObjects(name), name).toEqual([]);
});
const names: string[] = [];
function named(prefix: string): string {
  const name = uniqueName(prefix);
  names.push(name);
  return name;
}

interface Result {
  got: number;
  errors: string[];
  lagged: number[];
  ends: number;
  seqs?: number[];
}
async function result(c: NodeChild, timeoutMs = 60_000): Promise<Result> {
  const line = await c.line('result ', timeoutMs);
  return JSON.parse(line.slice('result '.length)) as Result;
}

describe('Channel between processes', () => {
  it('4 senders x 4 receivers, random sizes 0-64 KiB: every receiver gets every message once, in each sender\'s order', async () => {
    const name = named('c44');
    const count = 150;
    const receivers = Array.from({ length: 4 }, () => start('receiver.mjs', { name, senders: 4, channel: { capacity: 64 } }));
    await Promise.all(receivers.map((r) => r.line('ready')));
    const senders = Array.from({ length: 4 }, (_, id) =>
      start('sender.mjs', { name, id, count, minSize: 0, maxSize: 64 * 1024, waitRecv: 4, channel: { capacity: 64 } }),
    );
    const results = await Promise.all(receivers.map((r) => result(r, 120_000)));
    for (const r of results) {
      expect(r.errors).toEqual([]);
      expect(r.got).toBe(4 * count);
      expect(r.ends).toBe(4);
    }
    await Promise.all([...senders, ...receivers].map((c) => c.exited));
    for (const c of [...senders, ...receivers]) expect(c.child.exitCode).toBe(0);
    expect(shmObjects(name)).toEqual([]);
  });

  it('SIGKILL of a receiver mid-stream: senders go on and the others lose nothing', async () => {
    const name = named('ckill');
    const count = 2000;
    const victim = start('receiver.mjs', { name, progressAt: 50, channel: { capacity: 16 } });
    const survivor = start('receiver.mjs', { name, channel: { capacity: 16 } });
    await Promise.all([victim.line('ready'), survivor.line('ready')]);
    // A small ring: a dead receiver that kept counting would stop the sender within 16 messages.
    const sender = start('sender.mjs', { name, id: 0, count, minSize: 16, maxSize: 256, waitRecv: 2, channel: { capacity: 16 } });
    await victim.line('progress');
    await victim.kill('SIGKILL');
    const r = await result(survivor);
    expect(r.errors).toEqual([]);
    expect(r.got).toBe(count);
    await sender.line('done');
    expect((await sender.exited).code).toBe(0);
    expect(shmObjects(name)).toEqual([]);
  });

  it("SIGSTOP of a receiver in 'wait' mode: sends time out with ERR_LIBIPC_TIMEOUT, nobody is disconnected", async () => {
    const name = named('cstop');
    const tx = track(new Channel(name, { capacity: 8 }));
    const stopped = start('receiver.mjs', { name });
    const other = start('receiver.mjs', { name });
    await Promise.all([stopped.line('ready'), other.line('ready')]);
    expect(await tx.waitForRecv(2, { timeoutMs: 20_000 })).toBe(true);
    stopped.child.kill('SIGSTOP');
    let sent = 0;
    let error: unknown;
    for (let seq = 0; seq < 100 && !error; seq++) {
      try {
        await tx.send(message(0, seq), { timeoutMs: 300 });
        sent++;
      } catch (err) {
        error = err;
      }
    }
    expect(error).toMatchObject({ code: 'ERR_LIBIPC_TIMEOUT' });
    expect(sent).toBe(8);
    expect(tx.recvCount).toBe(2);
    stopped.child.kill('SIGCONT');
    await tx.send(end(0), { timeoutMs: 20_000 });
    for (const r of await Promise.all([result(stopped), result(other)])) {
      expect(r.errors).toEqual([]);
      expect(r.got).toBe(sent);
    }
  });

  it("SIGSTOP of a receiver in 'lag' mode: senders go on; after SIGCONT it gets ERR_LIBIPC_LAGGED with the count", async () => {
    const name = named('clag');
    const capacity = 16;
    const tx = track(new Channel(name, { capacity, onFull: 'lag' }));
    const stopped = start('receiver.mjs', { name, lag: true, keepSeqs: true });
    const other = start('receiver.mjs', { name, lag: true });
    await Promise.all([stopped.line('ready'), other.line('ready')]);
    expect(await tx.waitForRecv(2, { timeoutMs: 20_000 })).toBe(true);
    stopped.child.kill('SIGSTOP');
    const total = 100;
    const start_ = performance.now();
    for (let seq = 0; seq < total; seq++) expect(await tx.send(message(0, seq), { timeoutMs: 5_000 })).toBe(true);
    await tx.send(end(0));
    expect(performance.now() - start_).toBeLessThan(10_000);
    stopped.child.kill('SIGCONT');
    const r = await result(stopped);
    expect(r.errors).toEqual([]);
    expect(r.lagged).toHaveLength(1);
    // The ring holds the last `capacity` messages: the 15 last data messages and the end marker.
    expect(r.lagged[0]).toBe(total + 1 - capacity);
    expect(r.got).toBe(capacity - 1);
    expect(r.seqs).toEqual(Array.from({ length: capacity - 1 }, (_, i) => total - capacity + 1 + i));
    expect(r.lagged[0]! + r.got).toBe(total);
  });

  it('SIGKILL of a sender mid-message: nobody sees a partial message and the channel goes on', async () => {
    const name = named('cpart');
    // Ring of 16 x 4 KiB; the message is 1 MiB, so it streams and cannot finish while the receiver is stopped.
    const probe = track(new Channel(name, { capacity: 16 }));
    const rx = start('receiver.mjs', { name, keepSeqs: true });
    await rx.line('ready');
    rx.child.kill('SIGSTOP');
    const big = start('big-sender.mjs', name, String(1024 * 1024));
    await big.line('mid');
    await big.kill('SIGKILL');
    rx.child.kill('SIGCONT');
    expect(await probe.send(message(7, 0), { timeoutMs: 20_000 })).toBe(true);
    expect(await probe.send(end(7), { timeoutMs: 20_000 })).toBe(true);
    const r = await result(rx);
    expect(r.errors).toEqual([]);
    expect(r.seqs).toEqual([0]);
  });

  it('SIGKILL of a sender in the middle of many multi-slot messages: whatever arrives is whole and in order', async () => {
    const name = named('cmulti');
    const rx = start('receiver.mjs', { name, keepSeqs: true });
    await rx.line('ready');
    // 2-4 slots per message, sent as fast as possible; killed at a moment we do not choose.
    const sender = start('sender.mjs', { name, id: 0, count: 1_000_000, minSize: 5000, maxSize: 16000, waitRecv: 1, progressAt: 300, end: false });
    await sender.line('progress');
    await sender.kill('SIGKILL');
    const probe = track(new Channel(name));
    expect(await probe.send(end(0), { timeoutMs: 20_000 })).toBe(true);
    const r = await result(rx);
    expect(r.errors).toEqual([]);
    expect(r.got).toBeGreaterThanOrEqual(300);
    expect(r.seqs).toEqual(Array.from({ length: r.got }, (_, i) => i));
  });

  it('SIGKILL of a route sender frees the route for a new sender', async () => {
    const name = named('route');
    const rx = track(new Route(name, { mode: 'receiver' }));
    const first = start('route-sender.mjs', name);
    await first.line('sent');
    expect(Buffer.from((await rx.recv({ timeoutMs: 10_000 }))!).toString()).toBe(`from ${first.child.pid}`);
    expect(() => new Route(name)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_EXISTS' }));
    await first.kill('SIGKILL');
    const second = track(new Route(name));
    expect(await second.send('from the new sender')).toBe(true);
    expect(Buffer.from((await rx.recv({ timeoutMs: 10_000 }))!).toString()).toBe('from the new sender');
  });

  it('32 receivers join and leave while a sender sends; recvCount is right at the end', async () => {
    const name = named('churn');
    const tx = track(new Channel(name, { capacity: 32 }));
    let stop = false;
    let sent = 0;
    const sending = (async () => {
      while (!stop) {
        if (await tx.send(message(0, sent), { timeoutMs: 10_000 })) sent++;
        else await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const procs = Array.from({ length: 8 }, () => start('churn.mjs', { name, handles: 4, rounds: 8, keep: 2 }));
    await Promise.all(procs.map((p) => p.line('settled', 60_000)));
    expect(tx.recvCount).toBe(16);
    // Kill half of them: the dead stop counting at once and do not hold the sender back.
    await Promise.all(procs.slice(0, 4).map((p) => p.kill('SIGKILL')));
    expect(tx.recvCount).toBe(8);
    const before = sent;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await sending;
    expect(sent).toBeGreaterThan(before);
    expect(tx.recvCount).toBe(8);
  });

  it('a process that exits without close() leaves nothing behind', async () => {
    const name = named('noclose');
    const c = start('no-close.mjs', name);
    await c.line('opened');
    expect((await c.exited).code).toBe(0);
    expect(shmObjects(name)).toEqual([]);
  });

  it('leaves nothing in /dev/shm once every process is gone, even after crashes', async () => {
    const name = named('gone');
    const rx = start('receiver.mjs', { name });
    await rx.line('ready');
    await rx.kill('SIGKILL');
    expect(shmObjects(name).sort()).toEqual([`libipc.chan.${name}`, `libipc.chanbell.${name}.0`]);
    // The next user reaps the dead row; when it closes as the last handle the object goes.
    const h = new Channel(name);
    expect(h.recvCount).toBe(0);
    h.close();
    expect(shmObjects(name)).toEqual([]);
  });
});

function message(sender: number, seq: number): Buffer {
  const body = Buffer.alloc(64, seq & 255);
  const buf = Buffer.alloc(12 + body.length);
  buf.writeUInt32LE(sender, 0);
  buf.writeUInt32LE(seq, 4);
  body.copy(buf, 12);
  // The fixture's checksum: first 4 bytes of sha1(payload), little-endian.
  buf.writeUInt32LE(createHash('sha1').update(body).digest().readUInt32LE(0), 8);
  return buf;
}
function end(sender: number): Buffer {
  const buf = Buffer.alloc(12);
  buf.writeUInt32LE(sender, 0);
  buf.writeUInt32LE(0xffffffff, 4);
  return buf;
}

describe('living alongside Node', () => {
  it('closing a receiver leaves module resolution intact (a require through a pnpm symlink still resolves)', async () => {
    const c = start('resolve-after-close.mjs', named('resolve'));
    const path = await c.line('/');
    expect(path).toMatch(/packages\/shm\/dist\/index\.cjs$/);
    expect(path).not.toContain('node_modules');
    expect((await c.exited).code).toBe(0);
  });
});
