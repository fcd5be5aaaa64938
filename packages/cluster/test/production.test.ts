// Production shape: a three-member etcd with client TLS (certificates made with openssl) and password auth, a
// least-privilege user per cluster (the README's etcdctl role). Coded errors for bad certificates, wrong
// passwords and missing permissions; nodes riding through the loss of the etcd leader and of a follower; and
// a node partitioned by a TCP proxy that fences itself (its daemons stop before its lease can expire) while
// the leader re-places them, with no two copies of a daemon ever running (checked on recorded intervals).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibipcError } from '@libipc/shm';
import { ClusterNode } from '../src/index.js';
import { uniqueName } from '../../../test/helpers.js';
import { addClusterUser, type EtcdCluster, startEtcdCluster } from './etcd-cluster.js';
import { type NodeProc, marks, startCluster, startNode, until } from './harness.js';
import { type TcpProxy, startProxy } from './tcp-proxy.js';

let etcd: EtcdCluster;
let dir: string;
const proxies: TcpProxy[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'libipc-prod-'));
  etcd = await startEtcdCluster({ size: 3, tls: true, auth: true });
}, 120_000);
afterAll(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await etcd?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let users = 0;
/** A cluster name and a user whose only role is readwrite on that cluster's prefix. */
function clusterWithUser(): { cluster: string; auth: { username: string; password: string } } {
  const cluster = uniqueName('p');
  return { cluster, auth: addClusterUser(etcd, cluster, `u${++users}-${process.pid}`, `pw-${users}`) };
}

/** What the node fixture reads from the environment: TLS files, the user, the shared daemon log. */
function envFor(auth: { username: string; password: string }, log: string): Record<string, string> {
  const c = etcd.certs!;
  return { ETCD_CACERT: c.ca, ETCD_CERT: c.clientCert, ETCD_KEY: c.clientKey, ETCD_USERNAME: auth.username, ETCD_PASSWORD: auth.password, DAEMON_LOG: log };
}

async function codeOf(p: Promise<unknown>): Promise<LibipcError> {
  try {
    const n = await p;
    await (n as ClusterNode).leave?.();
  } catch (err) {
    expect(err).toBeInstanceOf(LibipcError);
    return err as LibipcError;
  }
  throw new Error('join did not fail');
}

interface Interval {
  node: string;
  start: bigint;
  stop?: bigint;
}

/** The shared daemon log as intervals per daemon (CLOCK_MONOTONIC ns: one clock for every process). */
function intervals(log: string): Map<string, Interval[]> {
  const byName = new Map<string, Interval[]>();
  let text = '';
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return byName;
  }
  for (const line of text.split('\n').filter(Boolean)) {
    const [what, name, node, ns] = line.split(' ') as [string, string, string, string];
    const list = byName.get(name) ?? [];
    byName.set(name, list);
    if (what === 'start') list.push({ node, start: BigInt(ns) });
    else {
      const open = list.find((i) => i.node === node && i.stop === undefined);
      if (open) open.stop = BigInt(ns);
    }
  }
  return byName;
}

/** No two recorded runs of one daemon overlap: each starts after the one before it stopped. */
function expectNoOverlap(log: string, except: string[] = []): void {
  for (const [name, list] of intervals(log)) {
    if (except.includes(name)) continue;
    const sorted = [...list].sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      expect(prev.stop !== undefined && prev.stop <= cur.start, `${name}: ran on ${prev.node} (${prev.start}–${prev.stop ?? 'still running'}) while it started on ${cur.node} (${cur.start})`).toBe(true);
    }
  }
}

/** name → number of nodes running it now, from the nodes' lines. */
function runningCounts(nodes: NodeProc[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of nodes) {
    const live = new Set<string>();
    for (const l of n.lines) {
      if (l.startsWith('spawn ')) live.add(l.slice(6));
      else if (l.startsWith('stop ')) live.delete(l.slice(5));
    }
    for (const d of live) counts[d] = (counts[d] ?? 0) + 1;
  }
  return counts;
}

describe('TLS and auth', () => {
  it('joins with ca/cert/key paths or buffers and a least-privilege user; coded errors for a bad certificate, a wrong password, a missing permission', async () => {
    const { cluster, auth } = clusterWithUser();
    const c = etcd.certs!;
    const base = { endpoints: etcd.endpoints, cluster, leaseTtlS: 2, requestTimeoutMs: 3000 };
    const tls = { ca: c.ca, cert: c.clientCert, key: c.clientKey };

    const a = await ClusterNode.join({ ...base, nodeName: 'a', tls, auth });
    const b = await ClusterNode.join({ ...base, nodeName: 'b', tls: { ca: readFileSync(c.ca), cert: readFileSync(c.clientCert), key: readFileSync(c.clientKey) }, auth });
    await a.register('svc');
    expect(a.locate('svc')).toBe('a');
    a.registerLauncher('L', { spawn: async () => undefined });
    b.registerLauncher('L', { spawn: async () => undefined });
    expect((await b.spawnRegister('L', 'daemon')).node).toMatch(/^[ab]$/);
    await b.leave();
    await a.leave();

    const wrongPassword = await codeOf(ClusterNode.join({ ...base, nodeName: 'x', tls, auth: { ...auth, password: 'wrong' } }));
    expect(wrongPassword.code).toBe('ERR_LIBIPC_AUTH');
    expect(wrongPassword.message).toContain(auth.username);

    const untrustedClient = await codeOf(ClusterNode.join({ ...base, nodeName: 'x', tls: { ca: c.ca, cert: c.otherCert, key: c.otherKey }, auth }));
    expect(untrustedClient.code).toBe('ERR_LIBIPC_TLS');
    expect(untrustedClient.message).toMatch(/refused this client's certificate/);

    const untrustedServer = await codeOf(ClusterNode.join({ ...base, nodeName: 'x', tls: { ca: c.otherCa, cert: c.clientCert, key: c.clientKey }, auth }));
    expect(untrustedServer.code).toBe('ERR_LIBIPC_TLS');
    expect(untrustedServer.message).toMatch(/does not trust etcd's certificate/);

    const unreadable = await codeOf(ClusterNode.join({ ...base, nodeName: 'x', tls: { ...tls, ca: join(dir, 'missing.crt') }, auth }));
    expect(unreadable.code).toBe('ERR_LIBIPC_TLS');
    const mismatched = await codeOf(ClusterNode.join({ ...base, nodeName: 'x', tls: { ...tls, key: c.otherKey }, auth }));
    expect(mismatched.code).toBe('ERR_LIBIPC_TLS');

    // A user whose role covers another cluster's prefix, and a client with no user at all.
    const other = clusterWithUser();
    const denied = await codeOf(ClusterNode.join({ ...base, nodeName: 'x', tls, auth: other.auth }));
    expect(denied.code).toBe('ERR_LIBIPC_PERMISSION');
    expect(denied.message).toContain(`'libipc/cluster/${cluster}/'`);
    expect(denied.message).toContain(`role grant-permission libipc-${cluster} readwrite libipc/cluster/${cluster}/ --prefix`);
    const anonymous = await codeOf(ClusterNode.join({ ...base, nodeName: 'x', tls }));
    expect(anonymous.code).toBe('ERR_LIBIPC_PERMISSION');
    expect(anonymous.message).toMatch(/pass 'auth'/);

    // Nothing left behind in etcd by the nodes that left or failed to join.
    const admin = etcd.admin();
    try {
      expect(await admin.getAll().prefix(`libipc/cluster/${cluster}/`).keys()).toEqual([]);
    } finally {
      admin.close();
    }
  });
});

describe('a three-member etcd with TLS and auth', () => {
  it('the etcd leader, then a follower, killed: nodes keep working within TTL + 1 s, no daemon runs twice', async () => {
    const { cluster, auth } = clusterWithUser();
    const log = join(dir, `${cluster}.log`);
    // A generous TTL for a loaded machine: the bound below (TTL + 1 s) holds etcd's own election (2–4 s here) too.
    const TTL = 10;
    const all = Array.from({ length: 6 }, (_, i) => `d${i}`);
    const { nodes } = await startCluster(etcd.endpoints.join(','), ['n1', 'n2', 'n3'], {
      cluster,
      ttl: TTL,
      daemons: all.length,
      intervalMs: 500,
      env: envFor(auth, log),
      options: { requestTimeoutMs: 2000 },
    });
    await until(nodes, () => Object.keys(runningCounts(nodes)).length === all.length, 'all daemons started', 30_000);

    for (const role of ['leader', 'follower'] as const) {
      const leader = await etcd.leader();
      const victim = role === 'leader' ? leader : etcd.members.find((m) => m.running && m !== leader)!;
      const t0 = performance.now();
      await victim.kill('SIGKILL');
      // When etcd itself can take writes again (a leader among the members left): how long its own election
      // takes is etcd's (election timeout 2 s, randomised, longer on a loaded machine), not the nodes'.
      const elected = (async () => {
        while (performance.now() - t0 < 6 * TTL * 1000) {
          try {
            await etcd.leader();
            return performance.now() - t0;
          } catch {
            await sleep(50);
          }
        }
        return Number.POSITIVE_INFINITY;
      })();
      // Every node serves a write again (retrying while it says etcd is unavailable).
      const recovered = Promise.all(
        nodes.map(async (n) => {
          for (;;) {
            try {
              await n.call('register', { name: `after-${role}-${n.name}` }, 10_000);
              return performance.now() - t0;
            } catch (err) {
              if ((err as { code?: string }).code !== 'ERR_LIBIPC_CLUSTER_UNAVAILABLE') throw err;
              // Far past the bound asserted below: fail with what the node went through instead of the test's timeout.
              if (performance.now() - t0 > 6 * TTL * 1000) {
                throw new Error(`node ${n.name} still unavailable ${Math.round(performance.now() - t0)} ms after the etcd ${role} was killed; its events:\n${n.lines.filter((l) => l.startsWith('event ')).slice(-30).join('\n')}\nlast error: ${(err as Error).message}`);
              }
              await sleep(100);
            }
          }
        }),
      );
      // The member comes back before any assertion: a failed one must not leave the next case a member short.
      const perNode = await recovered.finally(() => victim.start());
      const etcdBack = await elected;
      expect(etcdBack, `etcd elects a leader among the members left (${role} killed)`).toBeLessThan(6 * TTL * 1000);
      // Each node writes again within TTL + 1 s of etcd taking writes again (in practice: well under a second).
      const after = Math.max(...perNode) - etcdBack;
      const detail = `etcd had a leader again after ${Math.round(etcdBack)} ms; nodes wrote again after ${perNode.map((ms) => Math.round(ms)).join(', ')} ms`;
      expect(after, `writes work again after the etcd ${role} was killed (${detail})`).toBeLessThan(TTL * 1000 + 1000);
      // No daemon ever ran twice, and each runs exactly once now (after a few recovery passes).
      await sleep(1500);
      expectNoOverlap(log);
      expect(runningCounts(nodes)).toEqual(Object.fromEntries(all.map((d) => [d, 1])));
    }
    for (const n of nodes) await n.call('waitLocate', { name: 'after-follower-n3', node: 'n3' });
  }, 180_000);

  it('a node cut off by a TCP proxy stops its daemons before its lease can expire; the leader re-places them; never two copies; it re-joins when healed', async () => {
    const { cluster, auth } = clusterWithUser();
    const log = join(dir, `${cluster}.log`);
    const TTL = 4;
    const MARGIN = 1500;
    const opts = { cluster, ttl: TTL, intervalMs: 500, env: envFor(auth, log), options: { requestTimeoutMs: 2000, fenceMarginMs: MARGIN } };
    // n1 and n2 reach etcd directly; n3 only through one proxy per member.
    const mine = await Promise.all(etcd.members.map((m) => startProxy('127.0.0.1', Number(m.endpoint.split(':').pop()))));
    proxies.push(...mine);
    const { nodes } = await startCluster(etcd.endpoints.join(','), ['n1', 'n2'], opts);
    const n3 = startNode(mine.map((p) => `https://${p.address}`).join(','), cluster, 'n3', opts);
    await n3.line('joined ');
    nodes.push(n3);
    const [n1, n2] = nodes as [NodeProc, NodeProc];
    await n1.call('waitLocate', { name: 'nothing', node: null });

    // Daemons the leader keeps running: three that placement puts on n3, three elsewhere.
    const onN3: string[] = [];
    const elsewhere: string[] = [];
    for (let i = 0; onN3.length < 3 || elsewhere.length < 3; i++) {
      const where = await n1.call<string>('pick', { name: `p${i}` });
      if (where === 'n3' && onN3.length < 3) onN3.push(`p${i}`);
      else if (where !== 'n3' && elsewhere.length < 3) elsewhere.push(`p${i}`);
    }
    const wanted = [...onN3, ...elsewhere];
    for (const name of wanted) await Promise.all(nodes.map((n) => n.call('want', { name })));
    await until(nodes, () => wanted.every((d) => runningCounts(nodes)[d] === 1), 'all daemons started', 30_000);
    expect(n3.matching('spawn ').map((l) => l.slice(6)).sort()).toEqual([...onN3].sort());
    // And one daemon n3 may keep when fenced (its launcher 'K' says it is safe to run twice).
    let kept = '';
    for (let i = 0; !kept; i++) if ((await n1.call<string>('pick', { name: `k${i}` })) === 'n3') kept = `k${i}`;
    await n3.call('spawnRegister', { launcher: 'K', name: kept });

    const m = marks(nodes);
    const t0 = process.hrtime.bigint();
    for (const p of mine) p.blackhole();
    const fenced = await n3.line('event fenced', { from: m.get(n3), timeoutMs: 30_000 });
    const payload = JSON.parse(fenced.slice('event fenced '.length)) as { stopped: Array<{ processName: string }>; kept: Array<{ processName: string }> };
    expect(payload.stopped.map((d) => d.processName).sort()).toEqual([...onN3].sort());
    expect(payload.kept.map((d) => d.processName)).toEqual([kept]);
    await n3.line('event unavailable', { from: m.get(n3) });
    // Its daemons stopped within TTL − margin of the cut (the last renewed keepalive was sent before it), give
    // or take a second of a loaded machine; the lease cannot expire on etcd's side before TTL after that send.
    for (const d of onN3) {
      const stop = intervals(log).get(d)!.find((i) => i.node === 'n3')!.stop!;
      expect(Number(stop - t0) / 1e6, `${d} stopped on n3 (ms after the cut)`).toBeLessThan(TTL * 1000 - MARGIN + 1000);
    }
    // The leader starts them elsewhere once the lease has expired; never while n3 still ran them.
    const survivors = [n1, n2];
    await until(survivors, () => onN3.every((d) => survivors.some((n) => n.matching(`spawn ${d}`, m.get(n)).length > 0)), 're-placed on n1/n2', 30_000);
    expectNoOverlap(log, [kept]);
    expect(n3.matching(`stop ${kept}`)).toEqual([]);

    // Healed: n3 re-joins (a new lease), nothing is duplicated, and it works again.
    const healed = n3.lines.length;
    for (const p of mine) p.heal();
    await n3.line('event available', { from: healed, timeoutMs: 30_000 });
    await sleep(1500); // several recovery passes: a duplicate placement would show now
    expectNoOverlap(log, [kept]);
    expect(runningCounts(nodes)).toEqual(Object.fromEntries([...wanted, kept].map((d) => [d, 1])));
    expect(n3.matching('spawn ', healed)).toEqual([]);
    await n3.call('register', { name: 'back' });
    for (const n of nodes) {
      await n.call('waitLocate', { name: 'back', node: 'n3' });
      await n.call('waitLocate', { name: kept, node: 'n3' });
      const book = await n.call<Record<string, string[]>>('book');
      expect(Object.keys(book).sort()).toEqual(['n1', 'n2', 'n3']);
      expect(Object.values(book).flat().filter((d) => wanted.includes(d)).sort()).toEqual([...wanted].sort());
    }
  }, 180_000);
});
