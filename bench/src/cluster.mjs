// @libipc/cluster: how fast the daemons of a SIGKILLed node run elsewhere (lease TTL 2 s and 5 s), what
// locate() costs, and the placement function simulated over 1,000 nodes and 100,000 names.
//   node bench/src/cluster.mjs        (BENCH_TRIALS=N: kills per TTL; needs etcd: packages/cluster/scripts/ensure-etcd.sh)
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ClusterNode, createPlacement } from '@libipc/cluster';
import { machine, printTable, summarize } from './stats.mjs';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 8);
const DAEMONS = 30;
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

// --- a private etcd on 127.0.0.1 ---------------------------------------------------------------------------
async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  await once(s, 'close');
  return port;
}

async function startEtcd() {
  if (!['/usr/bin/etcd', '/usr/local/bin/etcd'].some(existsSync)) {
    spawnSync('bash', [here('../../packages/cluster/scripts/ensure-etcd.sh')], { stdio: 'inherit' });
  }
  const dir = mkdtempSync(join(tmpdir(), 'libipc-bench-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const child = spawn(
    'etcd',
    ['--name', 'bench', '--data-dir', join(dir, 'data'), '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `bench=http://127.0.0.1:${peer}`, '--logger', 'zap', '--log-outputs', 'stderr'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise((resolve, reject) => {
    createInterface({ input: child.stderr }).on('line', (l) => l.includes('serving client traffic') && resolve());
    child.once('exit', (code) => reject(new Error(`etcd exited (${code}) before it was ready`)));
  });
  return {
    endpoint,
    async close() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- nodes as processes ---------------------------------------------------------------------------------------
function startNode(endpoint, cluster, name, ttl) {
  const child = spawn(process.execPath, [here('./_cluster-node.mjs'), endpoint, cluster, name, String(ttl), String(DAEMONS)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const node = { name, child, daemons: new Set(), leader: false, listeners: new Set(), exited: once(child, 'exit') };
  createInterface({ input: child.stdout }).on('line', (l) => {
    const [what, daemon, at] = l.split(' ');
    if (what === 'spawn') node.daemons.add(daemon);
    if (what === 'leader' || l === 'joined leader') node.leader = true;
    for (const f of node.listeners) f(what, daemon, Number(at));
  });
  node.joined = new Promise((resolve) => node.listeners.add((what) => what === 'joined' && resolve()));
  return node;
}

/** SIGKILL → each of the victim's daemons spawned on a survivor: one sample (ms) per daemon. */
async function failover(endpoint, ttl, trials) {
  const cluster = `bench-${process.pid}-${ttl}`;
  const nodes = [];
  for (const name of ['n1', 'n2', 'n3']) {
    const n = startNode(endpoint, cluster, name, ttl);
    await n.joined;
    nodes.push(n);
  }
  const placed = () => nodes.reduce((s, n) => s + n.daemons.size, 0) === DAEMONS;
  while (!placed()) await new Promise((r) => setTimeout(r, 50));
  const samples = [];
  for (let t = 0; t < trials; t++) {
    const victim = nodes.filter((n) => !n.leader).sort((a, b) => b.daemons.size - a.daemons.size)[0];
    const lost = new Set(victim.daemons);
    if (lost.size === 0) throw new Error('no follower runs a daemon');
    const survivors = nodes.filter((n) => n !== victim);
    const done = new Promise((resolve) => {
      const seen = new Set();
      const f = (what, daemon, at) => {
        if (what !== 'spawn' || !lost.has(daemon) || seen.has(daemon)) return;
        seen.add(daemon);
        samples.push(at - t0);
        if (seen.size === lost.size) {
          for (const s of survivors) s.listeners.delete(f);
          resolve();
        }
      };
      for (const s of survivors) s.listeners.add(f);
    });
    const t0 = Date.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    await done;
    // The node comes back (its name is free: its lease is gone) with no daemons.
    const again = startNode(endpoint, cluster, victim.name, ttl);
    await again.joined;
    nodes[nodes.indexOf(victim)] = again;
  }
  for (const n of nodes) n.child.kill('SIGKILL');
  await Promise.all(nodes.map((n) => n.exited));
  return summarize(samples);
}

/** locate() and pickNode() answered from the local cache, with 1,000 registrations in the book. */
async function locateCost(endpoint) {
  const cluster = `bench-locate-${process.pid}`;
  const a = await ClusterNode.join({ endpoints: [endpoint], cluster, nodeName: 'a' });
  const b = await ClusterNode.join({ endpoints: [endpoint], cluster, nodeName: 'b' });
  const names = Array.from({ length: 1000 }, (_, i) => `svc${i}`);
  for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n) => b.register(n)));
  while (a.locate(names[names.length - 1]) !== 'b') await new Promise((r) => setTimeout(r, 20));
  const book = a.addressBook();
  const time = (f, rounds = 1_000_000) => {
    for (let i = 0; i < 10_000; i++) f(i);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) f(i);
    return Number(process.hrtime.bigint() - t0) / rounds;
  };
  const rows = [
    { call: 'locate(name), registered', ns: time((i) => a.locate(names[i % 1000])) },
    { call: 'locate(name), not registered', ns: time((i) => a.locate(`none${i % 1000}`)) },
    { call: 'addressBook().pickNode(name)', ns: time((i) => book.pickNode(names[i % 1000]), 200_000) },
  ];
  await b.leave();
  await a.leave();
  return rows;
}

/** The placement function over 1,000 simulated nodes and 100,000 names. */
async function simulation() {
  const nodes = Array.from({ length: 1000 }, (_, i) => `node-${i}`);
  const names = Array.from({ length: 100_000 }, (_, i) => `daemon-${i}`);
  const t0 = performance.now();
  const base = await createPlacement(nodes);
  const buildMs = performance.now() - t0;
  const owners = names.map((n) => base.owner(n));
  const perNode = new Map(nodes.map((n) => [n, 0]));
  for (const o of owners) perNode.set(o, perNode.get(o) + 1);
  const mean = names.length / nodes.length;
  const maxNames = Math.max(...perNode.values());
  const maxPartitions = Math.max(...base.loads().values());
  const movedBy = (p) => names.filter((n, i) => p.owner(n) !== owners[i]).length / names.length;
  const joined = movedBy(await createPlacement([...nodes, 'node-1000']));
  const left = movedBy(await createPlacement(nodes.filter((n) => n !== 'node-500')));
  return [
    { metric: 'placement computed (1,000 nodes, 10,240 partitions)', value: buildMs, unit: 'ms' },
    { metric: 'names moved when a node joins (ideal 1/1001 = 0.10 %)', value: joined * 100, unit: '%' },
    { metric: 'names moved when a node leaves (ideal 1/1000 = 0.10 %)', value: left * 100, unit: '%' },
    { metric: `max partitions on a node (bound ceil(10,240/1,000 × 1.2) = ${base.maxLoad})`, value: maxPartitions, unit: 'partitions' },
    { metric: `max names on a node (mean ${mean})`, value: maxNames, unit: `names (${(maxNames / mean).toFixed(2)} × mean)` },
  ];
}

console.log(`# @libipc/cluster — ${await machine()}`);
const sim = await simulation();
printTable('Placement simulation: 1,000 nodes, 100,000 names', sim, 2);
const etcd = await startEtcd();
try {
  printTable('locate cost (local cache, 1,000 registrations)', await locateCost(etcd.endpoint), 1);
  const rows = [];
  for (const [ttl, trials] of [[2, TRIALS], [5, Math.max(2, Math.ceil(TRIALS / 2))]]) {
    const s = await failover(etcd.endpoint, ttl, trials);
    rows.push({ 'SIGKILL of a node → its daemons running elsewhere': `lease TTL ${ttl} s (${trials} kills, ${s.n} daemons)`, 'p50 ms': s.p50, 'p99 ms': s.p99, 'aim (TTL + 1 s) ms': ttl * 1000 + 1000 });
  }
  printTable('Recovery after a node crash (3 nodes, 30 daemons)', rows, 0);
} finally {
  await etcd.close();
}
