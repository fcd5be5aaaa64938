// @libipc/typed-channel: round-trip latency and one-way throughput between two Node processes, against what a
// Node user would pick instead in the same run: a Unix domain socket (net), process.send (fork IPC, advanced
// serialization) and, as an in-process reference, a worker_threads MessagePort. Also: how long a sender blocked
// by a full ring waits after its slowest receiver is SIGKILLed.
//   corepack pnpm --filter @libipc/bench exec node src/channel.mjs      (BENCH_ROUNDS=… to change the rounds)
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { SharedMemory, wait, waitBackend, wake } from '@libipc/shm';
import { Channel, packMessages } from '@libipc/typed-channel';
import { interleaved, machine, printTable, summarize } from './stats.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5000);
const WARMUP = 300;
const SMALL_COUNT = Number(process.env.BENCH_SMALL ?? 200_000);
// Batched rows move more messages: at millions per second, 200 000 would time mostly the start.
const BATCHED_COUNT = SMALL_COUNT * 10;
const LARGE_COUNT = Number(process.env.BENCH_LARGE ?? 300);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const MiB = 1024 * 1024;
const [role, ...args] = process.argv.slice(2);

// ---- children: echo (round trips) and sink (throughput) for each mechanism ----

/**
 * Reads length-prefixed frames from a stream: the framing a socket user needs for messages. Without `view`, frames
 * are only counted (onFrame gets no argument): the least a socket reader can do per message.
 */
function frames(onFrame, view = true) {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    while (pending.length - off >= 4) {
      const len = pending.readUInt32LE(off);
      if (pending.length - off - 4 < len) break;
      onFrame(view ? pending.subarray(off + 4, off + 4 + len) : undefined);
      off += 4 + len;
    }
    pending = pending.subarray(off);
  };
}
function frame(payload) {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(payload.length);
  return [head, payload];
}

async function child() {
  if (role === 'chan-echo') {
    const [name, spinUs] = args;
    const req = new Channel(`${name}-req`, { mode: 'receiver', spinUs: Number(spinUs) });
    const rep = new Channel(`${name}-rep`, { spinUs: Number(spinUs) });
    process.on('message', () => process.exit(0));
    process.send('ready');
    for (;;) {
      const m = await req.recv();
      if (m) await rep.send(m);
    }
  } else if (role === 'word-echo') {
    // The reference for a sleeping receiver's wake-up: one shared word, @libipc/shm wait/wake, no ring, no doorbell.
    const mem = SharedMemory.open(args[0]);
    const words = new Int32Array(mem.buffer);
    process.on('message', () => process.exit(0));
    process.send('ready');
    for (let seen = 0; ; ) {
      while (Atomics.load(words, 0) === seen) await wait(mem, 0, seen, 10_000);
      seen = Atomics.add(words, 0, 1) + 1; // odd → even: the reply
      wake(mem, 0);
    }
  } else if (role === 'chan-spin-echo') {
    // Both sides active: the echo spins on tryRecv and answers with trySend (no promise, no sleep).
    const [name] = args;
    const req = new Channel(`${name}-req`, { mode: 'receiver' });
    const rep = new Channel(`${name}-rep`);
    let stop = false;
    process.on('message', () => (stop = true));
    process.send('ready');
    while (!stop) {
      for (let i = 0; i < 10_000; i++) {
        const m = req.tryRecv();
        if (m) while (!rep.trySend(m));
      }
      await new Promise((r) => setImmediate(r)); // let the stop message in
    }
    process.exit(0);
  } else if (role === 'chan-sink') {
    const [name, count] = args;
    const ch = new Channel(name, { mode: 'receiver', spinUs: 200 });
    process.send('ready');
    let got = 0;
    let bytes = 0;
    while (got < Number(count)) {
      const m = ch.tryRecv() ?? (await ch.recv());
      got++;
      bytes += m.length;
    }
    process.send({ got, bytes });
    ch.close();
  } else if (role === 'chan-batch-sink') {
    // recvMany: every message available in one call; `inplace` reads one-slot messages in place (no copy);
    // `packed` takes packed batches (recvPacked: no JS value per message).
    const [name, count, inplace] = args;
    const ch = new Channel(name, { mode: 'receiver', spinUs: 200 });
    process.send('ready');
    let got = 0;
    let bytes = 0;
    const cpu0 = process.cpuUsage();
    while (got < Number(count)) {
      if (inplace === 'packed') {
        const batch = ch.tryRecvPacked(4096);
        const b = batch.offsets.length > 1 ? batch : await ch.recvPacked(4096);
        got += b.offsets.length - 1;
        bytes += b.data.length;
      } else if (inplace === '1') {
        const m = ch.tryRecv({ copy: false }) ?? (await ch.recv({ copy: false }));
        got++;
        bytes += m.length;
      } else {
        const batch = ch.tryRecvMany(1024);
        const msgs = batch.length > 0 ? batch : await ch.recvMany(1024);
        got += msgs.length;
        for (const m of msgs) bytes += m.length;
      }
    }
    process.send({ got, bytes, cpu: process.cpuUsage(cpu0) });
    ch.close();
  } else if (role === 'chan-victim') {
    const ch = new Channel(args[0], { mode: 'receiver', capacity: 4 });
    process.send('ready');
    setInterval(() => {}, 1000); // stays, never reads, until killed
    void ch;
  } else if (role === 'socket-echo') {
    const server = net.createServer((s) => s.on('data', frames((f) => s.write(Buffer.concat(frame(f))))));
    server.listen(args[0], () => process.send('ready'));
    process.on('message', () => process.exit(0));
  } else if (role === 'socket-sink') {
    // `walk`: the least a socket reader can do per message — step over length prefixes, no view per frame
    // (what recvPacked gives a channel reader).
    const [path, count, walk] = args;
    let got = 0;
    let cpu0;
    const onFrame = () => {
      cpu0 ??= process.cpuUsage();
      if (++got === Number(count)) process.send({ got, cpu: process.cpuUsage(cpu0) });
    };
    const server = net.createServer((s) => s.on('data', frames(onFrame, walk !== '1')));
    server.listen(path, () => process.send('ready'));
    process.on('message', () => process.exit(0));
  } else if (role === 'ipc-echo') {
    process.on('message', (m) => (m === 'stop' ? process.exit(0) : process.send(m)));
    process.send('ready');
  } else if (role === 'ipc-sink') {
    const count = Number(args[0]);
    let got = 0;
    process.on('message', (m) => {
      if (m === 'stop') process.exit(0);
      if (++got === count) process.send({ got });
    });
    process.send('ready');
  }
}

function worker() {
  const { mode, count } = workerData;
  let got = 0;
  parentPort.on('message', (m) => {
    if (mode === 'echo') parentPort.postMessage(m);
    else if (++got === count) parentPort.postMessage({ got });
  });
  parentPort.postMessage('ready');
}

// ---- parent ----

async function startChild(...argv) {
  const c = fork(new URL(import.meta.url).pathname, argv, { stdio: 'inherit', serialization: 'advanced' });
  await once(c, 'message');
  return c;
}
async function stop(c) {
  if (c.exitCode === null) {
    c.send('stop');
    await Promise.race([once(c, 'exit'), new Promise((r) => setTimeout(r, 2000))]);
    if (c.exitCode === null) c.kill('SIGKILL');
  }
}

/** Peers for round trips: each returns { trip(): Promise<void>, close(): Promise<void> } for one message size. */
async function channelPeer(size, spinUs) {
  const name = `bench-rt-${process.pid}-${size}-${spinUs}`;
  const req = new Channel(`${name}-req`, { spinUs });
  const rep = new Channel(`${name}-rep`, { mode: 'receiver', spinUs });
  const c = await startChild('chan-echo', name, String(spinUs));
  await req.waitForRecv(1);
  const msg = Buffer.alloc(size, 1);
  return {
    async trip() {
      await req.send(msg);
      await rep.recv();
    },
    async close() {
      await stop(c);
      req.close();
      rep.close();
    },
  };
}

/** Both sides spinning: trySend + a tryRecv loop here, the same in the echo. */
async function channelSpinPeer(size) {
  const name = `bench-spin-${process.pid}-${size}`;
  const req = new Channel(`${name}-req`);
  const rep = new Channel(`${name}-rep`, { mode: 'receiver' });
  const c = await startChild('chan-spin-echo', name);
  await req.waitForRecv(1);
  const msg = Buffer.alloc(size, 1);
  return {
    trip() {
      while (!req.trySend(msg));
      while (rep.tryRecv() === undefined);
    },
    async close() {
      c.send('stop');
      await once(c, 'exit');
      req.close();
      rep.close();
    },
  };
}

/** A word ping-pong with @libipc/shm wait/wake (both sides asleep): the wake-up a channel receiver could use. */
async function wordPeer() {
  const name = `bench-word-${process.pid}`;
  const mem = SharedMemory.create(name, 4096);
  const words = new Int32Array(mem.buffer);
  const c = await startChild('word-echo', name);
  return {
    async trip() {
      const ping = Atomics.add(words, 0, 1) + 1; // even → odd: the request
      wake(mem, 0);
      while (Atomics.load(words, 0) === ping) await wait(mem, 0, ping, 10_000);
    },
    async close() {
      await stop(c);
      mem.close();
      SharedMemory.unlink(name);
    },
  };
}

async function socketPeer(size) {
  const path = `/tmp/libipc-bench-${process.pid}-${size}.sock`;
  rmSync(path, { force: true });
  const c = await startChild('socket-echo', path);
  const sock = net.connect(path);
  await once(sock, 'connect');
  let resolve;
  sock.on('data', frames(() => resolve()));
  const msg = Buffer.concat(frame(Buffer.alloc(size, 1)));
  return {
    trip: () =>
      new Promise((res) => {
        resolve = res;
        sock.write(msg);
      }),
    async close() {
      sock.destroy();
      await stop(c);
      rmSync(path, { force: true });
    },
  };
}

async function ipcPeer(size) {
  const c = await startChild('ipc-echo');
  const msg = Buffer.alloc(size, 1);
  return {
    trip: () =>
      new Promise((res) => {
        c.once('message', res);
        c.send(msg);
      }),
    close: () => stop(c),
  };
}

async function portPeer(size) {
  const w = new Worker(new URL(import.meta.url), { workerData: { mode: 'echo' } });
  await once(w, 'message');
  const msg = new Uint8Array(size);
  return {
    trip: () =>
      new Promise((res) => {
        w.once('message', res);
        w.postMessage(msg);
      }),
    close: () => w.terminate(),
  };
}

async function channelThroughput(size, count, opts = {}) {
  const name = `bench-tp-${process.pid}-${size}`;
  const ch = new Channel(name, opts);
  const c = await startChild('chan-sink', name, String(count));
  await ch.waitForRecv(1);
  const msg = Buffer.alloc(size, 2);
  const done = once(c, 'message');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    if (!ch.trySend(msg)) await ch.send(msg);
  }
  await done;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  ch.close();
  await once(c, 'exit');
  return s;
}

/**
 * sendMany batches of `batch` messages into a recvMany receiver (or, with inPlace, an in-place reader); with
 * packed, sendPacked batches into a recvPacked receiver.
 */
async function channelBatchThroughput(size, count, opts = {}, { batch = 256, inPlace = false, packed = false } = {}) {
  const name = `bench-tpb-${process.pid}-${size}`;
  const ch = new Channel(name, opts);
  const c = await startChild('chan-batch-sink', name, String(count), packed ? 'packed' : inPlace ? '1' : '0');
  await ch.waitForRecv(1);
  const msg = Buffer.alloc(size, 2);
  const messages = Array.from({ length: batch }, () => msg);
  const block = packMessages(messages);
  const done = once(c, 'message');
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < count; ) {
    if (packed) {
      const part = count - sent >= batch ? block : { data: block.data, offsets: block.offsets.subarray(0, count - sent + 1) };
      const n = ch.trySendPacked(part);
      sent += n > 0 ? n : await ch.sendPacked({ data: part.data, offsets: part.offsets.subarray(0, 2) });
      continue;
    }
    const list = count - sent >= batch ? messages : messages.slice(0, count - sent);
    const n = ch.trySendMany(list);
    sent += n > 0 ? n : await ch.sendMany(list.slice(0, 1));
  }
  const [{ cpu }] = await done;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const mine = process.cpuUsage(cpu0);
  ch.close();
  await once(c, 'exit');
  return { s, cpuUs: (mine.user + mine.system + cpu.user + cpu.system) / count };
}

/** The socket with the same batching: frames written `batch` at a time in one write, read many per 'data'. */
async function socketBatchThroughput(size, count, { batch = 256, walk = false } = {}) {
  const path = `/tmp/libipc-bench-tpb-${process.pid}.sock`;
  rmSync(path, { force: true });
  const c = await startChild('socket-sink', path, String(count), walk ? '1' : '0');
  const sock = net.connect(path);
  await once(sock, 'connect');
  const chunk = Buffer.concat(Array.from({ length: batch }, () => frame(Buffer.alloc(size, 2))).flat());
  const done = once(c, 'message');
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < count; sent += batch) {
    if (!sock.write(count - sent >= batch ? chunk : chunk.subarray(0, (count - sent) * (size + 4)))) await once(sock, 'drain');
  }
  const [{ cpu }] = await done;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const mine = process.cpuUsage(cpu0);
  sock.destroy();
  await stop(c);
  rmSync(path, { force: true });
  return { s, cpuUs: (mine.user + mine.system + cpu.user + cpu.system) / count };
}

/** The reference for large messages: copying them once within one process (Buffer.copy, i.e. memcpy). */
async function memcpyThroughput(size, count) {
  const src = Buffer.alloc(size, 3);
  const dst = Buffer.alloc(size * 4);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) src.copy(dst, (i % 4) * size);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function socketThroughput(size, count) {
  const path = `/tmp/libipc-bench-tp-${process.pid}.sock`;
  rmSync(path, { force: true });
  const c = await startChild('socket-sink', path, String(count));
  const sock = net.connect(path);
  await once(sock, 'connect');
  const [head, body] = frame(Buffer.alloc(size, 2));
  const done = once(c, 'message');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    sock.write(head);
    if (!sock.write(body)) await once(sock, 'drain');
  }
  await done;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  sock.destroy();
  await stop(c);
  rmSync(path, { force: true });
  return s;
}

async function ipcThroughput(size, count) {
  const c = await startChild('ipc-sink', String(count));
  const msg = Buffer.alloc(size, 2);
  const done = once(c, 'message');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    if (!c.send(msg)) await new Promise((r) => setImmediate(r));
  }
  await done;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await stop(c);
  return s;
}

async function portThroughput(size, count) {
  const w = new Worker(new URL(import.meta.url), { workerData: { mode: 'sink', count } });
  await once(w, 'message');
  const msg = new Uint8Array(size);
  const done = once(w, 'message');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) w.postMessage(msg);
  await done;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await w.terminate();
  return s;
}

/** A sender waits on a full ring; its only receiver is SIGKILLed: how long until the send goes through. */
async function reapLatency() {
  const samples = [];
  for (let i = 0; i < 20; i++) {
    const name = `bench-reap-${process.pid}-${i}`;
    const ch = new Channel(name, { capacity: 4 });
    const c = await startChild('chan-victim', name);
    await ch.waitForRecv(1);
    const other = new Channel(name, { mode: 'receiver' }); // keeps send() from returning false once the victim is gone
    for (let k = 0; k < 4; k++) ch.trySend('x');
    // `other` reads, the victim does not: the ring stays full until the victim is reaped.
    for (let k = 0; k < 4; k++) other.tryRecv();
    const sending = ch.send('after');
    await new Promise((r) => setTimeout(r, 20));
    const t0 = process.hrtime.bigint();
    c.kill('SIGKILL');
    await sending;
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await once(c, 'exit').catch(() => {});
    ch.close();
    other.close();
  }
  return summarize(samples);
}

async function main() {
  const only = process.env.BENCH_ONLY; // 'rt', 'tp' or 'reap'
  console.log(`@libipc/typed-channel benchmark — ${await machine()}; ${ROUNDS} round trips per row`);
  if (!only || only === 'rt') await roundTrips();
  if (!only || only === 'tp') await throughputs();
  if (!only || only === 'reap') {
    const reap = await reapLatency();
    printTable('Sender blocked by a full ring: time from SIGKILL of the receiver to the send going through', [
      { 'p50 ms': reap.p50, 'p99 ms': reap.p99, runs: reap.n },
    ]);
  }
}

async function roundTrips() {
  const rt = [];
  for (const size of [64, 4096]) {
    const row = (mechanism, r) => ({ mechanism, size: `${size} B`, 'p50 µs': r.p50, 'p99 µs': r.p99 });
    // The spinning peer has its own block (it would steal a CPU from the others); the rest are interleaved.
    const [spinning] = await interleaved([await channelSpinPeer(size)], ROUNDS, WARMUP);
    const [active] = await interleaved([await channelPeer(size, 1000)], ROUNDS, WARMUP);
    const [asleep, sock, ipc, port, word] = await interleaved([
      await channelPeer(size, 0),
      await socketPeer(size),
      await ipcPeer(size),
      await portPeer(size),
      await wordPeer(),
    ], ROUNDS, WARMUP);
    rt.push(
      row('Channel, both sides spinning (trySend / tryRecv)', spinning),
      row('Channel, receiver active (await send / recv, spinUs 1000)', active),
      row('Channel, receiver asleep (spinUs 0)', asleep),
      row('Unix socket (net)', sock),
      row('process.send', ipc),
      row('MessagePort (worker thread, reference)', port),
      row(`shm word wait/wake, both asleep (${waitBackend()} backend; a wake-up without the ring, reference)`, word),
    );
  }
  printTable('Round trip between two processes', rt, 1);
}

async function throughputs() {
  // Each mechanism runs REPEAT times, the runs interleaved; the table shows the median run.
  const cases = [
    ['Channel, packed batches (sendPacked 256 → recvPacked)', 64, BATCHED_COUNT, (size, count) => channelBatchThroughput(size, count, { capacity: 4096, slotSize: 128 }, { packed: true })],
    ['Unix socket (net), batched, frames only counted (no view each)', 64, BATCHED_COUNT, (size, count) => socketBatchThroughput(size, count, { walk: true })],
    ['Channel, batched (sendMany 256 → recvMany)', 64, BATCHED_COUNT, (size, count) => channelBatchThroughput(size, count, { capacity: 4096, slotSize: 128 })],
    ['Unix socket (net), batched (256 frames per write, a view each)', 64, BATCHED_COUNT, (size, count) => socketBatchThroughput(size, count)],
    ['Channel (defaults)', 64, SMALL_COUNT, channelThroughput],
    ['Unix socket (net)', 64, SMALL_COUNT, socketThroughput],
    ['process.send', 64, SMALL_COUNT, ipcThroughput],
    ['MessagePort (reference)', 64, SMALL_COUNT, portThroughput],
    ['Channel (defaults: 512 slots of 4160 B)', MiB, LARGE_COUNT, channelThroughput],
    ['Channel (64 x 64 KiB slots)', MiB, LARGE_COUNT, (size, count) => channelThroughput(size, count, { capacity: 64, slotSize: 64 * 1024 })],
    ['Channel (8 x 1 MiB slots, read in place)', MiB, LARGE_COUNT, (size, count) => channelBatchThroughput(size, count, { capacity: 8, slotSize: MiB + 64 }, { batch: 4, inPlace: true })],
    ['memcpy in one process (Buffer.copy, reference)', MiB, LARGE_COUNT * 10, memcpyThroughput],
    ['Unix socket (net)', MiB, LARGE_COUNT, socketThroughput],
    ['process.send', MiB, LARGE_COUNT, ipcThroughput],
    ['MessagePort (reference)', MiB, LARGE_COUNT, portThroughput],
  ];
  const seconds = cases.map(() => []);
  for (let r = 0; r < REPEAT; r++) {
    for (let i = 0; i < cases.length; i++) {
      const [, size, count, fn] = cases[i];
      seconds[i].push(await fn(size, count));
    }
  }
  const tp = cases.map(([mechanism, size, count], i) => {
    const runs = seconds[i].map((r) => (typeof r === 'number' ? { s: r } : r)).sort((a, b) => a.s - b.s);
    const mid = runs[Math.floor(REPEAT / 2)];
    return {
      mechanism,
      size: size === 64 ? '64 B' : '1 MiB',
      'msgs/s': Math.round(count / mid.s),
      'GB/s': (count * size) / mid.s / 1e9,
      'CPU µs/msg (both sides)': mid.cpuUs === undefined ? '' : mid.cpuUs.toFixed(2),
    };
  });
  printTable(`One-way throughput (median of ${REPEAT} interleaved runs)`, tp, 2);
}

if (!isMainThread) worker();
else if (role) await child();
else await main();
