// A C++ service next to Node ones, through the header-only C++ clients (bench/native/cpp-peer.cc, built here with
// plain g++ -O2): 64-byte round trips (Node ↔ C++ against Node ↔ Node and a Unix socket between two Node
// processes), 64-byte one-way throughput in batches, and how soon a Node watcher learns of a SIGKILLed C++
// registrant (its death lease, against a pidfd exit watch of the same process).
//   corepack pnpm --filter @libipc/bench exec node src/cpp.mjs      (BENCH_ROUNDS=… to change the rounds)
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ServiceRegistry } from '@libipc/registry';
import { processIdentity, watchExit } from '@libipc/shm';
import { Channel } from '@libipc/typed-channel';
import { machine, printTable, summarize } from './stats.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5000);
const WARMUP = 300;
const BATCH = 64;
const COUNT = Number(process.env.BENCH_COUNT ?? 1_000_000);
const KILLS = Number(process.env.BENCH_KILLS ?? 30);
const self = fileURLToPath(import.meta.url);
const [role, ...args] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint());

// ---- Node children: the same roles as cpp-peer ----

async function nodeEcho(inName, outName) {
  const input = new Channel(inName, { mode: 'receiver' });
  const output = new Channel(outName);
  console.log('ready');
  for (;;) {
    const msg = await input.recv();
    if (msg === undefined || msg.length === 0) break;
    await output.send(msg);
  }
  input.close();
  output.close();
}

async function nodeSink(inName, count) {
  const input = new Channel(inName, { mode: 'receiver' });
  console.log('ready');
  for (let got = 0; got < Number(count); ) got += (await input.recvMany(256)).length;
  console.log('done');
  input.close();
}

function socketEcho(path) {
  const server = net.createServer((s) => s.on('data', (d) => s.write(d)));
  server.listen(path, () => console.log('ready'));
}

// ---- the parent ----

function peer(argv) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const next = () => once(lines, 'line').then(([l]) => l);
  return { child, next };
}

function build() {
  const require = createRequire(import.meta.url);
  const includes = ['@libipc/shm/include', '@libipc/typed-channel/include', '@libipc/registry/include'].map((m) => `-I${require(m).include_dir}`);
  const dir = mkdtempSync(join(tmpdir(), 'libipc-bench-cpp-'));
  const bin = join(dir, 'cpp-peer');
  execFileSync('g++', ['-std=c++17', '-O2', '-pthread', ...includes, fileURLToPath(new URL('../native/cpp-peer.cc', import.meta.url)), '-o', bin]);
  return { bin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function channelRoundTrips(argv, tag) {
  const inName = `bcpp_in_${process.pid}_${tag}`;
  const outName = `bcpp_out_${process.pid}_${tag}`;
  const replies = new Channel(outName, { mode: 'receiver' });
  const p = peer([...argv, inName, outName]);
  await p.next();
  const requests = new Channel(inName);
  const msg = new Uint8Array(64).fill(7);
  const samples = [];
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    const t0 = now();
    await requests.send(msg);
    await replies.recv();
    if (i >= WARMUP) samples.push((now() - t0) / 1000);
  }
  await requests.send(new Uint8Array(0));
  await once(p.child, 'exit');
  requests.close();
  replies.close();
  return summarize(samples);
}

async function socketRoundTrips() {
  const path = join(tmpdir(), `bcpp-${process.pid}.sock`);
  const p = peer([process.execPath, self, 'socket-echo', path]);
  await p.next();
  const socket = net.connect(path);
  await once(socket, 'connect');
  const msg = Buffer.alloc(64, 7);
  const samples = [];
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    const t0 = now();
    socket.write(msg);
    let got = 0;
    while (got < 64) got += (await once(socket, 'data'))[0].length;
    if (i >= WARMUP) samples.push((now() - t0) / 1000);
  }
  socket.destroy();
  p.child.kill();
  await once(p.child, 'exit');
  rmSync(path, { force: true });
  return summarize(samples);
}

async function throughput(argv, tag) {
  const name = `bcpp_sink_${process.pid}_${tag}`;
  const p = peer([...argv, name, String(COUNT)]);
  await p.next();
  const ch = new Channel(name);
  const batch = Array.from({ length: BATCH }, () => new Uint8Array(64).fill(1));
  const done = p.next();
  const t0 = now();
  for (let sent = 0; sent < COUNT; sent += BATCH) await ch.sendMany(batch);
  await done;
  const seconds = (now() - t0) / 1e9;
  await once(p.child, 'exit');
  ch.close();
  return COUNT / seconds / 1e6;
}

async function deathNotices(bin) {
  const domain = `bcpp${process.pid}`;
  const registry = new ServiceRegistry(domain);
  const lease = [];
  const pidfd = [];
  for (let i = 0; i < KILLS; i++) {
    const p = peer([bin, 'lease', domain, `victim.${i}`]);
    await p.next();
    const entry = registry.find(`victim.${i}`);
    const id = processIdentity(p.child.pid);
    let killedAt = 0;
    const byLease = registry.waitForDeath(entry).then(() => now() - killedAt);
    const byExit = watchExit(id.pid, id.startTime).then(() => now() - killedAt);
    killedAt = now();
    process.kill(p.child.pid, 'SIGKILL');
    lease.push((await byLease) / 1000);
    pidfd.push((await byExit) / 1000);
    await once(p.child, 'exit').catch(() => undefined);
  }
  registry.close();
  return { lease: summarize(lease), pidfd: summarize(pidfd) };
}

async function main() {
  const { bin, remove } = build();
  try {
    console.log(`# C++ and Node through libipc — ${await machine()}`);
    const nodePeer = (r) => [process.execPath, self, r];
    const rows = [
      { pair: 'Node → C++ → Node (libipc channel)', ...(await channelRoundTrips([bin, 'echo'], 'c')) },
      { pair: 'Node → Node → Node (libipc channel)', ...(await channelRoundTrips(nodePeer('echo'), 'n')) },
      { pair: 'Node → Node → Node (Unix socket)', ...(await socketRoundTrips()) },
    ];
    printTable(`64 B round trip, µs (${ROUNDS} rounds)`, rows.map((r) => ({ pair: r.pair, p50: r.p50, p99: r.p99 })));
    printTable(`64 B one way, batches of ${BATCH} (sendMany → recv_many/recvMany), million messages/s`, [
      { receiver: 'C++', 'M msg/s': await throughput([bin, 'sink'], 'c') },
      { receiver: 'Node', 'M msg/s': await throughput(nodePeer('sink'), 'n') },
    ], 2);
    const deaths = await deathNotices(bin);
    printTable(`C++ registrant SIGKILLed → a Node process knows, µs (${KILLS} kills)`, [
      { through: 'its death lease (registry.waitForDeath)', p50: deaths.lease.p50, p99: deaths.lease.p99 },
      { through: 'a pidfd exit watch (watchExit)', p50: deaths.pidfd.p50, p99: deaths.pidfd.p99 },
    ]);
  } finally {
    remove();
  }
}

if (role === 'echo') await nodeEcho(...args);
else if (role === 'sink') await nodeSink(...args);
else if (role === 'socket-echo') socketEcho(...args);
else await main();
