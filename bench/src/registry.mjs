// Benchmarks @libipc/registry: cost per call of find, list, register/unregister and heartbeat; waitFor
// latency from another process's register; recovery time after a lock holder's SIGKILL.
// Usage: node bench/src/registry.mjs [--quick]        (prints a markdown table: median, p90 and p99 per row)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SegmentHeader, SharedMemory } from '@libipc/shm';
import { ServiceRegistry } from '@libipc/registry';

const self = fileURLToPath(import.meta.url);
const quick = process.argv.includes('--quick');
const now = () => process.hrtime.bigint(); // CLOCK_MONOTONIC: comparable between processes

// ---- child roles ----

async function childRegister(domain, rounds) {
  // For each round i: wait for 'ready.i', then register 'svc.i' stamped with the time of the call.
  const registry = new ServiceRegistry(domain);
  console.log('up');
  for (let i = 0; i < Number(rounds); i++) {
    await registry.waitFor(`ready.${i}`);
    registry.register(`svc.${i}`, 'ctl', 'rep', { meta: String(now()) });
  }
  await registry.waitFor('finished');
  registry.close();
}

function childHolder(domain, how, mb) {
  // A registrant holding `mb` MB of touched memory: 'lease' registers itself (a death lease), 'pid' registers
  // for its own pid (no lease: only its exit tells). Until SIGKILLed.
  const ballast = [];
  for (let i = 0; i < Number(mb); i++) ballast.push(Buffer.alloc(1 << 20, 1));
  const registry = new ServiceRegistry(domain);
  registry.register('victim', 'ctl', 'rep', how === 'pid' ? { pid: process.pid } : {});
  console.log('registered');
  setInterval(() => ballast.length, 1 << 30);
}

function childHoldLock(domain) {
  const registry = new ServiceRegistry(domain);
  const mem = SharedMemory.open(domain, { kind: 'registry' });
  new SegmentHeader(mem).lock.lockSync(5000);
  console.log('locked');
  setInterval(() => registry.domain, 1 << 30); // until SIGKILLed
}

// ---- measurements ----

function stats(name, samplesNs, unit = 'µs') {
  const sorted = [...samplesNs].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const div = unit === 'ms' ? 1e6 : 1e3;
  const fmt = (ns) => (ns / div).toFixed(2);
  return { name, median: `${fmt(at(0.5))} ${unit}`, p90: `${fmt(at(0.9))} ${unit}`, p99: `${fmt(at(0.99))} ${unit}`, n: sorted.length };
}

function perCall(fn, n) {
  for (let i = 0; i < Math.min(1000, n); i++) fn(i); // warm up
  const samples = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = now();
    fn(i);
    samples[i] = Number(now() - t);
  }
  return samples;
}

function startChild(args) {
  const child = spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, next: async () => (await lines.next()).value, exited: once(child, 'exit') };
}

async function main() {
  const domain = (what) => `bench-${what}-${process.pid}`;
  const rows = [];

  {
    const n = quick ? 2_000 : 20_000;
    const registry = new ServiceRegistry(domain('calls'), { capacity: 32 });
    // Entries of another process, as in real use: each liveness check reads its /proc/<pid>/stat.
    const service = spawn('sleep', ['3600'], { stdio: 'ignore' });
    for (let i = 0; i < 16; i++) registry.register(`svc.${i}`, `svc.${i}.ctl`, `svc.${i}.rep`, { pid: service.pid });
    rows.push(stats('find (16 of 32 entries)', perCall(() => registry.find('svc.8'), n)));
    rows.push(stats('findAll prefix (16 entries)', perCall(() => registry.findAll('svc.'), n)));
    rows.push(stats('list (16 entries)', perCall(() => registry.list(), n)));
    const reg = [];
    const unreg = [];
    for (let i = 0; i < n; i++) {
      let t = now();
      registry.register('tmp', 'ctl', 'rep');
      reg.push(Number(now() - t));
      t = now();
      registry.unregister('tmp');
      unreg.push(Number(now() - t));
    }
    rows.push(stats('register', reg));
    rows.push(stats('unregister', unreg));
    registry.register('own', 'own.ctl', 'own.rep');
    rows.push(stats('heartbeat (lock-free)', perCall(() => registry.heartbeat('own'), n * 5)));
    rows.push(stats('groupState', perCall(() => registry.groupState('svc'), n)));
    registry.clear();
    registry.close();
    service.kill();
    await once(service, 'exit');
  }

  {
    const rounds = quick ? 50 : 500;
    const name = domain('waitfor');
    const registry = new ServiceRegistry(name);
    const child = startChild(['--child-register', name, String(rounds)]);
    await child.next(); // 'up'
    const latencies = [];
    for (let i = 0; i < rounds; i++) {
      const pending = registry.waitFor(`svc.${i}`);
      registry.register(`ready.${i}`, 'ctl', 'rep');
      const entry = await pending;
      latencies.push(Number(now() - BigInt(entry.meta)));
      registry.unregister(`ready.${i}`);
      registry.unregister(`svc.${i}`);
    }
    registry.register('finished', 'ctl', 'rep');
    await child.exited;
    registry.clear();
    registry.close();
    rows.push(stats("waitFor: another process's register → resolved", latencies));
  }

  {
    const rounds = quick ? 5 : 30;
    const recovery = [];
    for (let i = 0; i < rounds; i++) {
      const name = domain(`kill${i}`);
      const registry = new ServiceRegistry(name);
      registry.register('svc', 'ctl', 'rep');
      const holder = startChild(['--child-hold-lock', name]);
      await holder.next(); // 'locked'
      const t = now();
      holder.child.kill('SIGKILL');
      registry.find('svc'); // waits for the dead holder's lock, recovers, completes
      recovery.push(Number(now() - t));
      await holder.exited;
      registry.clear();
      registry.close();
    }
    rows.push(stats("recovery after lock holder's SIGKILL (kill → next op done)", recovery, 'ms'));
  }

  {
    // "Dead entry noticed": SIGKILL of a registrant → its 'removed-dead' reaches a watch() in this process. With a
    // death lease the watcher hears it from the kernel; without one, the entry's pid is watched (its exit).
    const rounds = quick ? 5 : 30;
    for (const mb of [30, 300]) {
      for (const how of ['lease', 'pid']) {
        const noticed = [];
        for (let i = 0; i < rounds; i++) {
          const name = domain(`dead${mb}${how}${i}`);
          const registry = new ServiceRegistry(name);
          const holder = startChild(['--child-holder', name, how, String(mb)]);
          await holder.next(); // 'registered'
          const entry = registry.find('victim');
          const changes = registry.watch();
          const removed = (async () => {
            for await (const c of changes) if (c.type === 'removed-dead') return;
          })();
          // Without a lease nothing in the registry learns of the death by itself: a watcher watches the pid.
          const exit = how === 'pid' ? registry.waitForDeath(entry).then(() => registry.gc()) : undefined;
          const t = now();
          holder.child.kill('SIGKILL');
          await removed;
          noticed.push(Number(now() - t));
          await exit;
          await holder.exited;
          registry.close();
        }
        rows.push(stats(`dead entry noticed by watch() (${mb} MB registrant, ${how === 'lease' ? 'death lease' : 'no lease: exit'})`, noticed, 'ms'));
      }
    }
  }

  console.log(`| operation | median | p90 | p99 | samples |\n| --- | ---: | ---: | ---: | ---: |`);
  for (const r of rows) console.log(`| ${r.name} | ${r.median} | ${r.p90} | ${r.p99} | ${r.n} |`);
}

if (process.argv[2] === '--child-register') await childRegister(process.argv[3], process.argv[4]);
else if (process.argv[2] === '--child-hold-lock') childHoldLock(process.argv[3]);
else if (process.argv[2] === '--child-holder') childHolder(process.argv[3], process.argv[4], process.argv[5]);
else await main();
