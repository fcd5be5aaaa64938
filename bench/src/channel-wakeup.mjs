// Where a sleeping receiver's round trip spends its time: the Channel asleep (spinUs 0) against its own wake-up
// mechanism alone (the doorbell FIFO, armed and rung as the channel does, with no ring and no JS around it), a shared
// word with @libipc/shm wait/wake (io_uring futex wait) and a Unix socket — interleaved round by round, with the CPU
// time per round trip of each side and the time the waking write takes.
//   node bench/src/channel-wakeup.mjs      (N=… round trips, ONLY=channel,doorbell,word,socket)
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { constants, openSync, rmSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { dirname } from 'node:path';
import { SharedMemory, wait, wake } from '@libipc/shm';
import { Channel } from '@libipc/typed-channel';
import { printTable } from './stats.mjs';

// The channel's doorbell is internal: reach it through the package's own addon.
const channelPackage = createRequire(import.meta.url).resolve('@libipc/typed-channel/package.json');
const addon = createRequire(channelPackage)('node-gyp-build')(dirname(channelPackage));

const N = Number(process.env.N ?? 20_000);
const WARMUP = 200;
const [role, a, b] = process.argv.slice(2);
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const ONE = Buffer.from([1]);

/** Echo processes: each answers one round trip at a time and reports its CPU time when told to stop. */
async function echo() {
  let base = 0;
  setImmediate(() => (base = cpuUs())); // after start-up
  process.on('message', (m) => {
    if (m !== 'stop') return;
    process.send({ cpu: cpuUs() - base });
    setTimeout(() => process.exit(0), 50);
  });
  if (role === 'channel') {
    const req = new Channel(`${a}-req`, { mode: 'receiver', spinUs: 0 });
    const rep = new Channel(`${a}-rep`, { spinUs: 0 });
    process.send('ready');
    for (;;) {
      const m = await req.recv();
      if (m) await rep.send(m);
    }
  } else if (role === 'doorbell') {
    const bell = new addon.Doorbell(b);
    process.send('ready');
    await once(process, 'message');
    const peer = openSync(a, constants.O_WRONLY | constants.O_NONBLOCK);
    for (;;) {
      await new Promise((r) => bell.arm(r));
      writeSync(peer, ONE);
    }
  } else if (role === 'word') {
    const mem = SharedMemory.open(a);
    const words = new Int32Array(mem.buffer);
    process.send('ready');
    for (let seen = 0; ; ) {
      while (Atomics.load(words, 0) === seen) await wait(mem, 0, seen, 10_000);
      seen = Atomics.add(words, 0, 1) + 1;
      wake(mem, 0);
    }
  } else if (role === 'socket') {
    net.createServer((s) => s.on('data', (d) => s.write(d))).listen(a, () => process.send('ready'));
  }
}

async function main() {
  const self = new URL(import.meta.url).pathname;
  const start = async (...args) => {
    const c = fork(self, args);
    await once(c, 'message');
    return c;
  };
  const cleanup = [];
  const writeNs = { channel: 0n, doorbell: 0n };
  const timed = (key, fn) => {
    const t0 = process.hrtime.bigint();
    const r = fn();
    writeNs[key] += process.hrtime.bigint() - t0;
    return r;
  };
  const peers = {};
  {
    const name = `wakeup-${process.pid}`;
    const req = new Channel(`${name}-req`, { spinUs: 0 });
    const rep = new Channel(`${name}-rep`, { mode: 'receiver', spinUs: 0 });
    const c = await start('channel', name);
    await req.waitForRecv(1);
    const msg = Buffer.alloc(64, 1);
    peers.channel = {
      c,
      async trip() {
        await timed('channel', () => req.send(msg));
        await rep.recv();
      },
    };
    cleanup.push(() => (req.close(), rep.close()));
  }
  {
    const mine = `/dev/shm/wakeup-a-${process.pid}`;
    const theirs = `/dev/shm/wakeup-b-${process.pid}`;
    const bell = new addon.Doorbell(mine);
    const c = await start('doorbell', mine, theirs);
    const peer = openSync(theirs, constants.O_WRONLY | constants.O_NONBLOCK);
    c.send('go');
    peers.doorbell = {
      c,
      async trip() {
        const rung = new Promise((r) => bell.arm(r));
        timed('doorbell', () => writeSync(peer, ONE));
        await rung;
      },
    };
    cleanup.push(() => (bell.close(), rmSync(mine, { force: true }), rmSync(theirs, { force: true })));
  }
  {
    const name = `wakeup-${process.pid}`;
    const mem = SharedMemory.create(name, 4096);
    const words = new Int32Array(mem.buffer);
    const c = await start('word', name);
    peers.word = {
      c,
      async trip() {
        const ping = Atomics.add(words, 0, 1) + 1;
        wake(mem, 0);
        while (Atomics.load(words, 0) === ping) await wait(mem, 0, ping, 10_000);
      },
    };
    cleanup.push(() => (mem.close(), SharedMemory.unlink(name)));
  }
  {
    const path = `/tmp/libipc-wakeup-${process.pid}.sock`;
    rmSync(path, { force: true });
    const c = await start('socket', path);
    const sock = net.connect(path);
    await once(sock, 'connect');
    let answered;
    sock.on('data', () => answered());
    const msg = Buffer.alloc(64, 1);
    peers.socket = { c, trip: () => new Promise((r) => ((answered = r), sock.write(msg))) };
    cleanup.push(() => (sock.destroy(), rmSync(path, { force: true })));
  }

  const names = process.env.ONLY ? process.env.ONLY.split(',') : Object.keys(peers);
  const samples = Object.fromEntries(names.map((k) => [k, []]));
  const cpuHere = Object.fromEntries(names.map((k) => [k, 0]));
  for (const k of names) writeNs[k] = 0n;
  for (let i = 0; i < N + WARMUP; i++) {
    for (const k of names) {
      if (i === WARMUP) writeNs[k] = 0n;
      const c0 = cpuUs();
      const t0 = process.hrtime.bigint();
      await peers[k].trip();
      if (i < WARMUP) continue;
      samples[k].push(Number(process.hrtime.bigint() - t0) / 1000);
      cpuHere[k] += cpuUs() - c0;
    }
  }
  const rows = [];
  for (const k of names) {
    peers[k].c.send('stop');
    const [{ cpu: cpuEcho }] = await once(peers[k].c, 'message');
    const sorted = samples[k].sort((x, y) => x - y);
    rows.push({
      'round trip (both sides asleep)': k,
      'p50 µs': sorted[N >> 1],
      'CPU µs per trip, this side': cpuHere[k] / N,
      'CPU µs per trip, echo': cpuEcho / (N + WARMUP),
      'waking write µs': k === 'channel' || k === 'doorbell' ? Number(writeNs[k]) / N / 1000 : '',
    });
  }
  for (const k of Object.keys(peers)) peers[k].c.kill();
  for (const f of cleanup) f();
  printTable(`Sleeping round trip, 64 B / one byte / one word, ${N} round trips each, interleaved`, rows, 1);
}

if (role) await echo();
else await main();
