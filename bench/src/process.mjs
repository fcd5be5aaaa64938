// @libipc/process: how fast a handle learns of a child's death, and how fast spawnAndWait sees a registration.
//   corepack pnpm --filter @libipc/bench exec node src/process.mjs
// 1. SIGKILL → exit known: our handle's `exit` promise against a plain child_process 'exit' event
//    (the same source underneath: the cost of the layer) and against a 10 ms waitpid-style poll (cpp-ipc).
// 2. register() in the child → spawnAndWait resolving: registry waitFor against a 50 ms find() poll
//    (cpp-ipc's spawn_and_wait). Both clocks are CLOCK_MONOTONIC (process.hrtime), shared by all processes.
import { spawn as nodeSpawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceRegistry } from '@libipc/registry';
import { forceKill, shutdown, spawn, spawnAndWait } from '@libipc/process';
import { isAlive } from '@libipc/shm';
import { machine, printTable, summarize } from './stats.mjs';

const KILL_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 300);
const REGISTER_ROUNDS = Math.max(20, Math.floor(KILL_ROUNDS / 3));
const self = new URL(import.meta.url).pathname;
const [role, domain, name] = process.argv.slice(2);
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

if (role === 'register') {
  const registry = new ServiceRegistry(domain);
  const t = process.hrtime.bigint();
  registry.register(name, `${name}.ctrl`, `${name}.reply`);
  console.log(`${t} ${process.hrtime.bigint()}`);
  process.on('SIGTERM', () => {
    registry.unregister(name);
    registry.close();
    process.exit(0);
  });
  setInterval(() => {}, 1 << 30);
} else {
  await main();
}

async function killToExit(kind) {
  const samples = [];
  for (let i = 0; i < KILL_ROUNDS + 10; i++) {
    let dt;
    if (kind === 'handle') {
      const h = spawn('bench-sleep', 'sleep', ['1000'], { stdio: 'ignore' });
      const t0 = nowMs();
      forceKill(h);
      await h.exit;
      dt = nowMs() - t0;
    } else if (kind === 'child_process') {
      const child = nodeSpawn('sleep', ['1000'], { stdio: 'ignore' });
      const exited = once(child, 'exit');
      const t0 = nowMs();
      child.kill('SIGKILL');
      await exited;
      dt = nowMs() - t0;
    } else {
      // What a 10 ms liveness poll sees (cpp-ipc's process manager).
      const child = nodeSpawn('sleep', ['1000'], { stdio: 'ignore' });
      const exited = once(child, 'exit');
      const t0 = nowMs();
      child.kill('SIGKILL');
      while (isAlive(child.pid)) await sleep(10);
      dt = nowMs() - t0;
      await exited;
    }
    if (i >= 10) samples.push(dt);
  }
  return summarize(samples);
}

async function registerToResolve(kind) {
  const registry = new ServiceRegistry(`bench-proc-${process.pid}`);
  const samples = [];
  const afterReturn = [];
  for (let i = 0; i < REGISTER_ROUNDS + 3; i++) {
    const svc = `svc${i}`;
    const args = [self, 'register', registry.domain, svc];
    let h;
    let t1;
    if (kind === 'spawnAndWait') {
      h = await spawnAndWait(registry, svc, process.execPath, args, { stdio: 'pipe', timeoutMs: 30_000 });
      t1 = process.hrtime.bigint();
    } else {
      // cpp-ipc's spawn_and_wait: find() every 50 ms until the name shows up.
      h = spawn(svc, process.execPath, args, { stdio: 'pipe' });
      while (!registry.find(svc)) await sleep(50);
      t1 = process.hrtime.bigint();
    }
    const [line] = await once(createInterface({ input: h.stdout }), 'line');
    const [called, returned] = line.split(' ').map(BigInt);
    if (i >= 3) {
      samples.push(Number(t1 - called) / 1e6);
      afterReturn.push(Number(t1 - returned) / 1e6);
    }
    await shutdown(h, 5000);
  }
  registry.close();
  return { called: summarize(samples), returned: summarize(afterReturn) };
}

async function main() {
  console.log(`@libipc/process benchmark — ${await machine()}`);
  const rows = [];
  for (const [what, kind] of [
    ['ProcessHandle.exit (forceKill → promise resolves)', 'handle'],
    ['child_process exit event (kill → event)', 'child_process'],
    ['10 ms liveness poll (cpp-ipc style)', 'poll'],
  ]) {
    const s = await killToExit(kind);
    rows.push({ 'SIGKILL → exit known': what, 'p50 ms': s.p50, 'p99 ms': s.p99, n: String(s.n) });
  }
  printTable('SIGKILL of a child → its exit known', rows, 3);

  const reg = [];
  for (const [what, kind] of [
    ['spawnAndWait (registry waitFor)', 'spawnAndWait'],
    ['spawn + find() every 50 ms (cpp-ipc style)', 'poll'],
  ]) {
    const { called, returned } = await registerToResolve(kind);
    reg.push({
      'register() in the child → caller knows': what,
      'p50 ms from call': called.p50,
      'p99 ms from call': called.p99,
      'p50 ms from return': returned.p50,
      'p99 ms from return': returned.p99,
      n: String(called.n),
    });
  }
  printTable('register() in the child → spawnAndWait resolves', reg, 3);
}
