// @libipc/shm: cross-process wait/wake round trip and watchExit latency, against what a Node user would
// use instead in the same run: a Unix domain socket (net) and process.send (fork IPC).
//   corepack pnpm --filter @libipc/bench exec node src/shm.mjs
import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { rmSync } from 'node:fs';
import { SharedMemory, wait, waitBackend, wake, watchExit } from '@libipc/shm';
import { machine, printTable, summarize } from './stats.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5000);
const WARMUP = 200;
const [role, arg, spin] = process.argv.slice(2);

// ---- child roles ----
if (role === 'shm-echo') {
  const mem = SharedMemory.open(arg);
  const words = new Int32Array(mem.buffer);
  process.send('ready');
  let seen = 0;
  for (;;) {
    await wait(mem, 0, seen, 10_000, { spinUs: Number(spin) });
    const v = Atomics.load(words, 0);
    if (v < 0) break;
    if (v % 2 === 1) {
      Atomics.store(words, 0, v + 1);
      wake(mem, 0);
      seen = v + 1; // what we wrote: the next ping may already be there
    }
  }
  mem.close();
  process.exit(0);
} else if (role === 'shm-rt') {
  // One measurement in a process of its own, so that it runs with the wait backend its environment chose.
  console.log(JSON.stringify(await shmRoundTrip(Number(arg))));
} else if (role === 'socket-echo') {
  const server = net.createServer((s) => s.on('data', (d) => s.write(d)));
  server.listen(arg, () => process.send('ready'));
  process.on('message', () => process.exit(0));
} else if (role === 'ipc-echo') {
  process.on('message', (m) => (m === 'stop' ? process.exit(0) : process.send(m)));
  process.send('ready');
} else {
  await main();
}

async function startChild(...args) {
  const child = fork(new URL(import.meta.url).pathname, args, { stdio: 'inherit' });
  await once(child, 'message');
  return child;
}

async function rounds(fn) {
  const samples = [];
  for (let i = 0; i < ROUNDS + WARMUP; i++) {
    const t0 = performance.now();
    await fn(i);
    if (i >= WARMUP) samples.push((performance.now() - t0) * 1000);
  }
  return summarize(samples);
}

async function shmRoundTrip(spinUs) {
  const name = `bench-${process.pid}-${spinUs}`;
  const mem = SharedMemory.create(name, 4096);
  const words = new Int32Array(mem.buffer);
  const child = await startChild('shm-echo', name, String(spinUs));
  const r = await rounds(async (i) => {
    const ping = 2 * i + 1;
    Atomics.store(words, 0, ping);
    wake(mem, 0);
    while (Atomics.load(words, 0) === ping) await wait(mem, 0, ping, 10_000, { spinUs });
  });
  Atomics.store(words, 0, -1);
  wake(mem, 0);
  await once(child, 'exit');
  mem.close();
  SharedMemory.unlink(name);
  return r;
}

async function socketRoundTrip() {
  const path = `/tmp/libipc-bench-${process.pid}.sock`;
  rmSync(path, { force: true });
  const child = await startChild('socket-echo', path);
  const sock = net.connect(path);
  await once(sock, 'connect');
  sock.setNoDelay(true);
  const payload = Buffer.alloc(64, 1);
  const r = await rounds(
    () =>
      new Promise((resolve) => {
        let got = 0;
        const onData = (d) => {
          got += d.length;
          if (got >= 64) {
            sock.off('data', onData);
            resolve();
          }
        };
        sock.on('data', onData);
        sock.write(payload);
      }),
  );
  sock.destroy();
  child.send('stop');
  await once(child, 'exit');
  rmSync(path, { force: true });
  return r;
}

async function ipcRoundTrip() {
  const child = await startChild('ipc-echo');
  const payload = 'x'.repeat(64);
  const r = await rounds(() => {
    const reply = once(child, 'message');
    child.send(payload);
    return reply;
  });
  child.send('stop');
  await once(child, 'exit');
  return r;
}

async function exitLatency(trials = 50) {
  const viaWatch = [];
  const viaExitEvent = [];
  for (let i = 0; i < trials; i++) {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    await once(child, 'spawn');
    const exitEvent = once(child, 'exit').then(() => performance.now());
    const watched = watchExit(child.pid).then(() => performance.now());
    const t0 = performance.now();
    child.kill('SIGKILL');
    viaWatch.push(((await watched) - t0) * 1000);
    viaExitEvent.push(((await exitEvent) - t0) * 1000);
  }
  return { watch: summarize(viaWatch), exit: summarize(viaExitEvent) };
}

async function main() {
  console.log(`@libipc/shm benchmark — ${await machine()}, ${ROUNDS} round trips each (64 B or one word)`);
  const rows = [];
  const add = (mechanism, s) => rows.push({ mechanism, 'p50 µs': s.p50, 'p99 µs': s.p99 });
  const inChild = (spinUs, env) =>
    JSON.parse(execFileSync(process.execPath, [new URL(import.meta.url).pathname, 'shm-rt', String(spinUs)], { env: { ...process.env, ...env } }));
  add(`shm wait/wake, receiver asleep (${waitBackend()} backend)`, await shmRoundTrip(0));
  add('shm wait/wake, receiver asleep (threads backend)', inChild(0, { LIBIPC_WAIT_BACKEND: 'threads' }));
  add('shm wait/wake, receiver spinning (spinUs 50)', await shmRoundTrip(50));
  add('Unix domain socket (net), 64 B', await socketRoundTrip());
  add('process.send (fork IPC), 64 B', await ipcRoundTrip());
  printTable('Cross-process round trip', rows);

  const exit = await exitLatency();
  printTable(
    'Exit seen after SIGKILL (50 trials)',
    [
      { mechanism: 'watchExit (pidfd, any pid)', 'p50 µs': exit.watch.p50, 'p99 µs': exit.watch.p99 },
      { mechanism: "child_process 'exit' event (own child only)", 'p50 µs': exit.exit.p50, 'p99 µs': exit.exit.p99 },
    ],
  );
}
