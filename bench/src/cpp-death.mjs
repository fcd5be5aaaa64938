// How soon a Node process learns that a C++ registrant was SIGKILLed (bench/native/cpp-lease.cc, built here with
// plain g++ -O2 against the packages' headers): through its registry entry's death lease (the kernel breaks it as
// the process starts to die) against a pidfd exit watch of the same process, and against the same for a Node
// registrant. (Channel round trips and throughput between C++ and Node: cpp-channel.mjs.)
//   corepack pnpm --filter @libipc/bench exec node src/cpp-death.mjs      (BENCH_KILLS=… to change the count)
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ServiceRegistry } from '@libipc/registry';
import { processIdentity, watchExit } from '@libipc/shm';
import { machine, printTable, summarize } from './stats.mjs';

const KILLS = Number(process.env.BENCH_KILLS ?? 50);
const self = fileURLToPath(import.meta.url);
const [role, ...args] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint());

function nodeRegistrant(domain, name) {
  const registry = new ServiceRegistry(domain);
  registry.register(name, 'ctl', 'rep');
  console.log('registered');
  setInterval(() => registry.domain, 1 << 30);
}

function build() {
  const require = createRequire(import.meta.url);
  const includes = ['@libipc/shm/include', '@libipc/registry/include'].map((m) => `-I${require(m).include_dir}`);
  const dir = mkdtempSync(join(tmpdir(), 'libipc-bench-cpp-'));
  const bin = join(dir, 'cpp-lease');
  execFileSync('g++', ['-std=c++17', '-O2', '-pthread', ...includes, fileURLToPath(new URL('../native/cpp-lease.cc', import.meta.url)), '-o', bin]);
  return { bin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function deaths(argv, tag) {
  const domain = `bdeath${process.pid}${tag}`;
  const registry = new ServiceRegistry(domain);
  const lease = [];
  const pidfd = [];
  for (let i = 0; i < KILLS; i++) {
    const child = spawn(argv[0], [...argv.slice(1), domain, `victim.${i}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(createInterface({ input: child.stdout }), 'line');
    const entry = registry.find(`victim.${i}`);
    const id = processIdentity(child.pid);
    let killedAt = 0;
    const byLease = registry.waitForDeath(entry).then(() => now() - killedAt);
    const byExit = watchExit(id.pid, id.startTime).then(() => now() - killedAt);
    killedAt = now();
    process.kill(child.pid, 'SIGKILL');
    lease.push((await byLease) / 1000);
    pidfd.push((await byExit) / 1000);
    await once(child, 'exit').catch(() => undefined);
  }
  registry.close();
  return { lease: summarize(lease), pidfd: summarize(pidfd) };
}

async function main() {
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
  } catch {
    console.log('cpp-death: g++ is not installed: skipped');
    return;
  }
  const { bin, remove } = build();
  try {
    console.log(`# A SIGKILLed registrant, seen from Node — ${await machine()}`);
    const cpp = await deaths([bin], 'c');
    const node = await deaths([process.execPath, self, 'registrant'], 'n');
    printTable(`SIGKILL → the Node watcher knows, µs (${KILLS} kills each)`, [
      { registrant: 'C++', through: 'death lease (waitForDeath)', p50: cpp.lease.p50, p99: cpp.lease.p99 },
      { registrant: 'C++', through: 'pidfd exit (watchExit)', p50: cpp.pidfd.p50, p99: cpp.pidfd.p99 },
      { registrant: 'Node', through: 'death lease (waitForDeath)', p50: node.lease.p50, p99: node.lease.p99 },
      { registrant: 'Node', through: 'pidfd exit (watchExit)', p50: node.pidfd.p50, p99: node.pidfd.p99 },
    ]);
  } finally {
    remove();
  }
}

if (role === 'registrant') nodeRegistrant(...args);
else await main();
