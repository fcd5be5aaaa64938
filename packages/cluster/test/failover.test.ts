// Several nodes as separate processes on a real etcd: membership, the address book, and the leader
// re-placing the daemons of nodes that crash (SIGKILL) or stop (SIGSTOP).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd } from './etcd.js';
import { marks, type NodeProc, spawns, startCluster, until } from './harness.js';

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.close();
});

const TTL = 2;

async function leaderOf(nodes: NodeProc[]): Promise<NodeProc> {
  const states = await Promise.all(nodes.map((n) => n.call<{ leader: boolean }>('status')));
  const leaders = nodes.filter((_, i) => states[i]!.leader);
  expect(leaders, 'exactly one leader').toHaveLength(1);
  return leaders[0]!;
}

/** Daemon names whose `spawn` lines (from the marks on) occur on `nodes`. */
function started(nodes: NodeProc[], from?: Map<NodeProc, number>): string[] {
  return spawns(nodes, from).map(([, d]) => d);
}

/** Every node's view: node → names registered there. */
async function books(nodes: NodeProc[]): Promise<Array<Record<string, string[]>>> {
  return Promise.all(nodes.map((n) => n.call<Record<string, string[]>>('book')));
}

/**
 * Makes every node's recover() list d0..d<count-1> once all nodes have joined (so that the leader's next
 * periodic pass spreads them over all of them), then waits for all to be started, once each; daemon → node.
 */
async function allStarted(nodes: NodeProc[], count: number): Promise<Map<string, string>> {
  for (let i = 0; i < count; i++) await Promise.all(nodes.map((n) => n.call('want', { name: `d${i}` })));
  await until(nodes, () => new Set(started(nodes)).size === count, `all ${count} daemons started`);
  const where = new Map(spawns(nodes).map(([node, d]) => [d, node]));
  expect(spawns(nodes)).toHaveLength(count);
  return where;
}

describe('cluster of processes', () => {
  it('3 nodes join, one leads, and locate agrees on every node after a registration', async () => {
    const { nodes } = await startCluster(etcd.endpoint, ['n1', 'n2', 'n3'], { ttl: TTL });
    await leaderOf(nodes);
    await nodes[1]!.call('register', { name: 'svc.api' });
    for (const n of nodes) expect(await n.call('waitLocate', { name: 'svc.api', node: 'n2' })).toBe('n2');
    const views = await books(nodes);
    for (const v of views) expect(v).toEqual({ n1: [], n2: ['svc.api'], n3: [] });
    await nodes[1]!.call('unregister', { name: 'svc.api' });
    for (const n of nodes) expect(await n.call('waitLocate', { name: 'svc.api', node: null })).toBe(null);
  });

  it('SIGKILL of a node that runs daemons: the leader re-places them on the survivors within TTL + a pass, each once', async () => {
    const { nodes } = await startCluster(etcd.endpoint, ['n1', 'n2', 'n3'], { ttl: TTL, intervalMs: 1000 });
    const where = await allStarted(nodes, 9);
    const leader = await leaderOf(nodes);
    const followers = nodes.filter((n) => n !== leader);
    const victim = followers.sort((a, b) => started([b]).length - started([a]).length)[0]!;
    const lost = started([victim]);
    expect(lost.length, `${victim.name} runs daemons: ${JSON.stringify([...where])}`).toBeGreaterThan(0);
    const survivors = nodes.filter((n) => n !== victim);
    const m = marks(survivors);

    const t0 = performance.now();
    await victim.kill('SIGKILL');
    await until(survivors, () => lost.every((d) => started(survivors, m).includes(d)), 're-placed on the survivors');
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(TTL * 1000 + 5000);

    await sleep(1500); // one more recovery pass: a wrong second placement would show up now
    expect(started(survivors, m).sort()).toEqual([...lost].sort());
    for (const d of lost) {
      await leader.line((l) => l.startsWith('event daemon-recovered') && l.includes(`"processName":"${d}"`), { from: m.get(leader) });
    }
    for (const v of await books(survivors)) {
      expect(Object.keys(v).sort()).toEqual(survivors.map((n) => n.name).sort());
      expect(Object.values(v).flat().sort()).toEqual(Array.from({ length: 9 }, (_, i) => `d${i}`).sort());
    }
  });

  it('SIGKILL of the leader: another node leads and recovery goes on', async () => {
    const { nodes } = await startCluster(etcd.endpoint, ['n1', 'n2', 'n3'], { ttl: TTL, intervalMs: 1000 });
    await allStarted(nodes, 6);
    const old = await leaderOf(nodes);
    const lost = started([old]);
    const survivors = nodes.filter((n) => n !== old);
    const m = marks(survivors);
    await old.kill('SIGKILL');

    const next = await Promise.any(survivors.map((n) => n.line('event leader', { from: m.get(n) }).then(() => n)));
    expect(await leaderOf(survivors)).toBe(next);
    await until(survivors, () => lost.every((d) => started(survivors, m).includes(d)), "the old leader's daemons re-placed");
    // The new leader recovers what recover() adds from now on too.
    await Promise.all(survivors.map((n) => n.call('want', { name: 'late' })));
    await until(survivors, () => started(survivors, m).includes('late'), "'late' started");
    await sleep(1500);
    expect(started(survivors, m).sort()).toEqual([...lost, 'late'].sort());
  });

  it('a SIGSTOPped leader that wakes after losing its lease places nothing, and stops its stale copies', async () => {
    const { nodes } = await startCluster(etcd.endpoint, ['n1', 'n2', 'n3'], { ttl: TTL, intervalMs: 300 });
    await allStarted(nodes, 6);
    const old = await leaderOf(nodes);
    const theirs = started([old]);
    const survivors = nodes.filter((n) => n !== old);
    const m = marks(nodes);

    old.child.kill('SIGSTOP');
    await Promise.any(survivors.map((n) => n.line('event leader', { from: m.get(n) })));
    await until(survivors, () => theirs.every((d) => started(survivors, m).includes(d)), 're-placed while the old leader sleeps');
    // A daemon the stopped leader will hear of as soon as it wakes (its stdin is read then), and others now.
    const oldWant = old.call('want', { name: 'late' });
    await Promise.all(survivors.map((n) => n.call('want', { name: 'late' })));
    await until(survivors, () => started(survivors, m).includes('late'), "'late' placed by the new leader");

    const woke = old.lines.length;
    old.child.kill('SIGCONT');
    await oldWant;
    await old.line('event available', { from: woke });
    await old.line('event follower', { from: woke });
    await sleep(1500); // several of its recovery intervals

    expect(old.matching('event daemon-placed', woke), 'placements by the deposed leader').toEqual([]);
    expect(old.matching('spawn ', woke)).toEqual([]);
    // Its own copies were re-placed elsewhere while it slept: it stops them instead of registering duplicates.
    expect(old.matching('stop ', woke).map((l) => l.slice(5)).sort()).toEqual([...theirs].sort());
    expect(started(survivors, m).sort()).toEqual([...theirs, 'late'].sort());
    for (const v of await books(nodes)) {
      expect(Object.values(v).flat().sort()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'late']);
      expect(v[old.name]).toEqual([]);
    }
  });
});
