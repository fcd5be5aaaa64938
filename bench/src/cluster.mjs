// @libipc/cluster: how fast the daemons of a SIGKILLed node run elsewhere (lease TTL 2 s and 5 s; one plaintext
// member, and three members with TLS and auth), what locate() costs, what TLS and auth add to register(), and
// the placement function simulated over 1,000 nodes and 100,000 names.
//   node bench/src/cluster.mjs        (BENCH_TRIALS=N: kills per TTL; needs etcd: packages/cluster/scripts/ensure-etcd.sh)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** EC P-256 CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makeCerts(dir) {
  mkdirSync(dir, { recursive: true });
  const ssl = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=bench-ca']);
  for (const [name, cn, ext] of [['server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n'], ['client', 'bench', 'extendedKeyUsage=clientAuth\n']]) {
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    ssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  }
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key'), serverCert: join(dir, 'server.crt'), serverKey: join(dir, 'server.key') };
}

/**
 * Three etcd members on 127.0.0.1, each serving clients over plain http AND over TLS (client certificates
 * required there), so that the same cluster measures both; auth is switched on later by enableAuth().
 */
async function startEtcd3() {
  const dir = mkdtempSync(join(tmpdir(), 'libipc-bench-etcd-'));
  const certs = makeCerts(join(dir, 'certs'));
  const ports = [];
  for (let i = 0; i < 9; i++) ports.push(await freePort());
  const peers = [0, 1, 2].map((i) => `m${i}=http://127.0.0.1:${ports[3 * i + 2]}`).join(',');
  const members = [0, 1, 2].map((i) => ({ plain: `http://127.0.0.1:${ports[3 * i]}`, tls: `https://127.0.0.1:${ports[3 * i + 1]}`, peer: `http://127.0.0.1:${ports[3 * i + 2]}` }));
  const children = members.map((m, i) =>
    spawn('etcd', ['--name', `m${i}`, '--data-dir', join(dir, `m${i}`), '--listen-client-urls', `${m.plain},${m.tls}`, '--advertise-client-urls', `${m.plain},${m.tls}`,
      '--listen-peer-urls', m.peer, '--initial-advertise-peer-urls', m.peer, '--initial-cluster', peers, '--initial-cluster-state', 'new',
      '--cert-file', certs.serverCert, '--key-file', certs.serverKey, '--trusted-ca-file', certs.ca, '--client-cert-auth',
      '--logger', 'zap', '--log-outputs', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  await Promise.all(children.map((child) => new Promise((resolve, reject) => {
    createInterface({ input: child.stderr }).on('line', (l) => l.includes('serving client traffic') && resolve());
    child.once('exit', (code) => reject(new Error(`etcd exited (${code}) before it was ready`)));
  })));
  const etcdctl = (args) => execFileSync('etcdctl', ['--endpoints', members.map((m) => m.tls).join(','), '--cacert', certs.ca, '--cert', certs.cert, '--key', certs.key, ...args], { stdio: 'ignore' });
  return {
    plain: members.map((m) => m.plain),
    tls: members.map((m) => m.tls),
    certs,
    /** Root user, auth on, and a user 'bench' whose role is readwrite on libipc/cluster/. */
    enableAuth() {
      etcdctl(['user', 'add', 'root:root-pw', '--interactive=false']);
      etcdctl(['auth', 'enable']);
      const root = ['--user', 'root:root-pw'];
      etcdctl([...root, 'role', 'add', 'libipc']);
      etcdctl([...root, 'role', 'grant-permission', 'libipc', 'readwrite', 'libipc/cluster/', '--prefix']);
      etcdctl([...root, 'user', 'add', 'bench:bench-pw', '--interactive=false']);
      etcdctl([...root, 'user', 'grant-role', 'bench', 'libipc']);
      return { username: 'bench', password: 'bench-pw' };
    },
    async close() {
      for (const c of children) c.kill('SIGKILL');
      await Promise.all(children.map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- nodes as processes ---------------------------------------------------------------------------------------
function startNode(endpoint, cluster, name, ttl, env = {}) {
  const child = spawn(process.execPath, [here('./_cluster-node.mjs'), endpoint, cluster, name, String(ttl), String(DAEMONS)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
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
async function failover(endpoint, ttl, trials, env = {}) {
  const cluster = `bench-${process.pid}-${ttl}-${Object.keys(env).length}`;
  const nodes = [];
  for (const name of ['n1', 'n2', 'n3']) {
    const n = startNode(endpoint, cluster, name, ttl, env);
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
    const again = startNode(endpoint, cluster, victim.name, ttl, env);
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

/** register() (a transaction, then the node's own watch shows it) and locate(), sequentially, per connection kind. */
async function registerCost(label, connection) {
  const cluster = `bench-reg-${process.pid}-${label.replace(/\W+/g, '-')}`;
  const a = await ClusterNode.join({ ...connection, cluster, nodeName: 'a' });
  const samples = [];
  for (let i = 0; i < 600; i++) {
    const t0 = performance.now();
    await a.register(`r${i}`);
    if (i >= 100) samples.push((performance.now() - t0) * 1000);
  }
  const s = summarize(samples);
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 1_000_000; i++) sink += a.locate(`r${i % 600}`) ? 1 : 0;
  const locateNs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (sink !== 1_000_000) throw new Error('locate missed a registration');
  await a.leave();
  return { connection: label, 'register p50 µs': s.p50, 'register p99 µs': s.p99, 'locate ns': locateNs };
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
// BENCH_ONLY_ETCD3=1: only the three-member (TLS, auth) part.
const only3 = process.env.BENCH_ONLY_ETCD3 === '1';
if (!only3) {
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
}

// Production shape: three members, TLS (client certificates), then auth.
const etcd3 = await startEtcd3();
try {
  const { certs } = etcd3;
  const tls = { ca: certs.ca, cert: certs.cert, key: certs.key };
  const cost = [
    await registerCost('3 members, plain http', { endpoints: etcd3.plain }),
    await registerCost('3 members, TLS', { endpoints: etcd3.tls, tls }),
  ];
  const auth = etcd3.enableAuth();
  cost.push(await registerCost('3 members, TLS + auth', { endpoints: etcd3.tls, tls, auth }));
  printTable('register() and locate() by connection (600 sequential registers, first 100 dropped)', cost, 1);
  const env = { ETCD_CACERT: certs.ca, ETCD_CERT: certs.cert, ETCD_KEY: certs.key, ETCD_USERNAME: auth.username, ETCD_PASSWORD: auth.password };
  const s = await failover(etcd3.tls.join(','), 2, TRIALS, env);
  printTable('Recovery after a node crash, three etcd members with TLS and auth (3 nodes, 30 daemons)', [
    { 'SIGKILL of a node → its daemons running elsewhere': `lease TTL 2 s (${TRIALS} kills, ${s.n} daemons)`, 'p50 ms': s.p50, 'p99 ms': s.p99, 'aim (TTL + 1 s) ms': 3000 },
  ], 0);
} finally {
  await etcd3.close();
}
