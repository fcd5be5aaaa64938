// C++ ↔ Node over @libipc/typed-channel: the round trip of a 64 B message from Node to an echo and back, with the
// echo in C++ (bench/native/cpp-echo.cc, libipc::Channel built with plain g++ against the packages' headers) and in
// Node, against a Unix domain socket echo (net), interleaved round by round in one run. Then 64 B batch throughput
// into a Node receiver (recvMany), from a C++ sender and from a Node one (sendMany of 256 each).
//   corepack pnpm --filter @libipc/bench exec node src/cpp-channel.mjs      (BENCH_ROUNDS=… to change the rounds)
import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Channel } from '@libipc/typed-channel';
import { interleaved, machine, printTable } from './stats.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5000);
const WARMUP = 300;
const SIZE = 64;
const [role, ...args] = process.argv.slice(2);
const BYE = Buffer.from('bye');
const COUNT = Number(process.env.BENCH_COUNT ?? 2_000_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);

function frameOf(payload) {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(payload.length);
  return Buffer.concat([head, payload]);
}

// ---- children (Node echoes) ----
async function child() {
  if (role === 'node-echo') {
    const [name, spinUs] = args;
    const req = new Channel(`${name}-req`, { mode: 'receiver', spinUs: Number(spinUs) });
    const rep = new Channel(`${name}-rep`, { spinUs: Number(spinUs) });
    process.send('ready');
    for (;;) {
      const m = await req.recv();
      if (m.byteLength === 3 && Buffer.from(m).equals(BYE)) break;
      await rep.send(m);
    }
    req.close();
    rep.close();
    process.exit(0);
  } else if (role === 'node-source') {
    const [name, count] = args;
    const ch = new Channel(name);
    process.send('ready');
    await ch.waitForRecv(1);
    const messages = Array.from({ length: 256 }, () => Buffer.alloc(SIZE, 2));
    for (let sent = 0; sent < Number(count); ) {
      const list = Number(count) - sent >= 256 ? messages : messages.slice(0, Number(count) - sent);
      const n = ch.trySendMany(list);
      sent += n > 0 ? n : await ch.sendMany(list.slice(0, 1));
    }
    ch.close();
    process.exit(0);
  } else if (role === 'socket-echo') {
    // One 64 B frame at a time (the parent waits for each reply): a 4-byte length prefix, echoed whole.
    const server = net.createServer((s) => s.on('data', (chunk) => s.write(chunk)));
    server.listen(args[0], () => process.send('ready'));
    process.on('message', () => process.exit(0));
  }
}

// ---- parent ----
function buildEcho() {
  const require = createRequire(import.meta.url);
  const includes = ['@libipc/shm/include', '@libipc/typed-channel/include'].flatMap((m) => ['-I', require(m).include_dir]);
  const dir = mkdtempSync(join(tmpdir(), 'libipc-bench-cpp-'));
  const bin = join(dir, 'cpp-echo');
  const source = new URL('../native/cpp-echo.cc', import.meta.url).pathname;
  execFileSync('g++', ['-std=c++17', '-pthread', '-O2', ...includes, source, '-o', bin], { stdio: 'inherit' });
  return { bin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A channel echo peer (C++ binary or Node child): { trip(), close() }. */
async function channelPeer(kind, spinUs, bin) {
  const name = `bench-cpp-${process.pid}-${kind}-${spinUs}`;
  const req = new Channel(`${name}-req`, { spinUs });
  const rep = new Channel(`${name}-rep`, { mode: 'receiver', spinUs });
  let exited;
  if (kind === 'cpp') {
    const c = spawn(bin, [name, String(spinUs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    exited = once(c, 'exit');
    await once(createInterface({ input: c.stdout }), 'line');
  } else {
    const c = fork(new URL(import.meta.url).pathname, ['node-echo', name, String(spinUs)], { stdio: 'inherit' });
    exited = once(c, 'exit');
    await once(c, 'message');
  }
  await req.waitForRecv(1);
  const msg = Buffer.alloc(SIZE, 1);
  return {
    async trip() {
      await req.send(msg);
      await rep.recv();
    },
    async close() {
      await req.send(BYE);
      await exited;
      req.close();
      rep.close();
    },
  };
}

async function socketPeer() {
  const path = join(tmpdir(), `libipc-bench-cpp-${process.pid}.sock`);
  rmSync(path, { force: true });
  const c = fork(new URL(import.meta.url).pathname, ['socket-echo', path], { stdio: 'inherit' });
  await once(c, 'message');
  const sock = net.connect(path);
  await once(sock, 'connect');
  const msg = frameOf(Buffer.alloc(SIZE, 1));
  let got = 0;
  let resolve;
  sock.on('data', (d) => {
    got += d.length;
    if (got >= msg.length) {
      got -= msg.length;
      resolve();
    }
  });
  return {
    trip: () =>
      new Promise((res) => {
        resolve = res;
        sock.write(msg);
      }),
    async close() {
      sock.destroy();
      c.send('stop');
      await once(c, 'exit');
      rmSync(path, { force: true });
    },
  };
}

/** Messages per second into a Node receiver (recvMany), from the first message to the last, from a C++ or Node sender. */
async function throughput(kind, bin) {
  const name = `bench-cpp-tp-${process.pid}-${kind}`;
  const ch = new Channel(name, { mode: 'receiver', capacity: 4096, slotSize: 128, spinUs: 200 });
  const c =
    kind === 'cpp'
      ? spawn(bin, ['source', name, String(COUNT)], { stdio: 'inherit' })
      : fork(new URL(import.meta.url).pathname, ['node-source', name, String(COUNT)], { stdio: 'inherit' });
  const exited = once(c, 'exit');
  let got = 0;
  let t0;
  while (got < COUNT) {
    const batch = ch.tryRecvMany(1024);
    const msgs = batch.length > 0 ? batch : await ch.recvMany(1024);
    t0 ??= process.hrtime.bigint();
    got += msgs.length;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await exited;
  ch.close();
  return COUNT / s;
}

async function main() {
  console.log(`C++ ↔ Node channel benchmark — ${await machine()}; ${ROUNDS} round trips of ${SIZE} B per row`);
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
  } catch {
    console.log('skipped: g++ is not installed (the C++ echo is built with it)');
    return;
  }
  const echo = buildEcho();
  try {
    const row = (mechanism, r) => ({ mechanism, 'p50 µs': r.p50, 'p99 µs': r.p99 });
    const [cppAsleep, nodeAsleep, sock] = await interleaved([
      await channelPeer('cpp', 0, echo.bin),
      await channelPeer('node', 0, echo.bin),
      await socketPeer(),
    ], ROUNDS, WARMUP);
    // Active rows each alone: a spinning echo would steal a CPU from the others.
    const [cppActive] = await interleaved([await channelPeer('cpp', 1000, echo.bin)], ROUNDS, WARMUP);
    const [nodeActive] = await interleaved([await channelPeer('node', 1000, echo.bin)], ROUNDS, WARMUP);
    printTable(`Round trip Node → echo → Node, ${SIZE} B`, [
      row('Channel, C++ echo, both asleep (spinUs 0)', cppAsleep),
      row('Channel, Node echo, both asleep (spinUs 0)', nodeAsleep),
      row('Unix socket (net), Node echo', sock),
      row('Channel, C++ echo, active (spinUs 1000)', cppActive),
      row('Channel, Node echo, active (spinUs 1000)', nodeActive),
    ]);
    const rates = { cpp: [], node: [] };
    for (let r = 0; r < REPEAT; r++) for (const kind of ['cpp', 'node']) rates[kind].push(await throughput(kind, echo.bin));
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    printTable(`Throughput into a Node receiver (recvMany), ${SIZE} B, ${COUNT} messages, median of ${REPEAT}`, [
      { sender: 'C++ (send_many 256)', 'msg/s': median(rates.cpp), 'MB/s': (median(rates.cpp) * SIZE) / 1e6 },
      { sender: 'Node (sendMany 256)', 'msg/s': median(rates.node), 'MB/s': (median(rates.node) * SIZE) / 1e6 },
    ], 0);
  } finally {
    echo.remove();
  }
}

if (role) await child();
else await main();
