// ClusterNode in this process on a real etcd: the address book's rules (oldest registration wins, duplicates
// reported, re-list after compaction), spawnRegister under concurrency, the leader's fence, and the bridge
// from a one-machine @libipc/registry domain.
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '@libipc/registry';
import { ClusterNode, type DaemonSpec, type Launcher } from '../src/index.js';
import { PrefixWatch } from '../src/prefix-watch.js';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { type EtcdServer, startEtcd } from './etcd.js';
import { freePorts } from './etcd-cluster.js';

let etcd: EtcdServer;
let admin: Etcd3;
beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoint });
});
afterAll(async () => {
  admin?.close();
  await etcd?.close();
});

/** A PrefixWatch through `client` starts (within `timeoutMs`) and sees a put that another client makes. */
async function expectWatchSeesAPut(client: Etcd3, timeoutMs: number): Promise<void> {
  const prefix = `libipc/test/${uniqueName('w')}/`;
  const seen: string[] = [];
  const watch = new PrefixWatch(client, prefix, { snapshot: () => undefined, changes: (c) => seen.push(...c.map((x) => x.key)), failed: () => undefined }, timeoutMs);
  try {
    await watch.start();
    await admin.put(`${prefix}k`).value('v');
    await eventually(() => seen.length === 1, 'the change seen');
    expect(seen).toEqual([`${prefix}k`]);
  } finally {
    watch.close();
  }
}

const open: ClusterNode[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.leave()));
});

async function join(cluster: string, nodeName: string, extra: Record<string, unknown> = {}): Promise<ClusterNode> {
  const n = await ClusterNode.join({ endpoints: [etcd.endpoint], cluster, nodeName, leaseTtlS: 2, ...extra });
  open.push(n);
  return n;
}

/** Resolves when `check()` holds (checked every 20 ms: the address book has no public change event). */
async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A launcher that records what it starts; recover() lists `wanted`. */
function recorder(wanted: string[] = []): Launcher & { started: string[]; stopped: string[] } {
  const l = {
    started: [] as string[],
    stopped: [] as string[],
    async spawn(d: DaemonSpec) {
      l.started.push(d.processName);
    },
    async stop(d: DaemonSpec) {
      l.stopped.push(d.processName);
    },
    async *recover() {
      for (const processName of wanted) yield { launcher: 'L', processName };
    },
  };
  return l;
}

describe('address book', () => {
  it('reads its own writes: after register/unregister/spawnRegister resolve, locate on the same node agrees', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const b = await join(cluster, 'b');
    a.registerLauncher('L', recorder());
    b.registerLauncher('L', recorder());
    await eventually(() => a.addressBook().getAvailableNodes().length === 2, 'a sees b');
    for (let i = 0; i < 20; i++) {
      await a.register(`own${i}`);
      expect(a.locate(`own${i}`)).toBe('a');
      await a.unregister(`own${i}`);
      expect(a.locate(`own${i}`)).toBeUndefined();
      const { node } = await a.spawnRegister('L', `sp${i}`);
      expect(a.locate(`sp${i}`)).toBe(node);
    }
  });

  it('a name registered on two nodes resolves to the oldest registration; the duplicate is reported', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const b = await join(cluster, 'b');
    await a.register('dup');
    await eventually(() => b.locate('dup') === 'a', 'b sees dup on a');
    const reports = [once(a, 'duplicate'), once(b, 'duplicate')];
    await b.register('dup');
    for (const [report] of await Promise.all(reports)) expect(report).toEqual({ processName: 'dup', nodes: ['a', 'b'] });
    expect([a.locate('dup'), b.locate('dup')]).toEqual(['a', 'a']);
    await a.unregister('dup');
    await eventually(() => a.locate('dup') === 'b' && b.locate('dup') === 'b', 'dup resolves to b');
    expect(a.addressBook().getProcessList('b')).toEqual(['dup']);
  });

  it('a watch resumed at a compacted revision lists again and reports what it missed', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const b = await join(cluster, 'b');
    await b.register('before');
    await eventually(() => a.locate('before') === 'b', 'a sees before');
    // Cut a's watch without it noticing, change the cluster, and compact etcd's history past a's revision.
    const book = (a as unknown as { book: { watch: { drop(): void }; resume(): Promise<void>; revision: number } }).book;
    book.watch.drop();
    const seen = book.revision;
    const joined = once(a, 'node-joined');
    await b.register('missed');
    await b.unregister('before');
    await join(cluster, 'c');
    const { header } = await admin.kv.range({ key: Buffer.from('x') });
    await admin.kv.compact({ revision: header.revision, physical: true });
    expect(Number(header.revision)).toBeGreaterThan(seen + 1);

    await book.resume();
    expect(await joined).toEqual(['c']);
    expect(a.locate('missed')).toBe('b');
    expect(a.locate('before')).toBeUndefined();
    expect(a.addressBook().getAvailableNodes()).toEqual(['a', 'b', 'c']);
    // And it keeps watching from there.
    await b.register('later');
    await eventually(() => a.locate('later') === 'b', 'a sees later');
  });

  it('a watch etcd refuses at creation does not hold up the next watch of the same client', async () => {
    // etcd answers a watch of an empty range "created and cancelled". etcd3's shared watch stream then waits
    // for that creation forever, and every later watch of the client with it: a node never came back.
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      const refused = client.watch().inRange({ start: 'b', end: 'a' }).watcher();
      const [err] = (await once(refused, 'error')) as [Error];
      expect(err.message).toMatch(/cancel/i);
      await expectWatchSeesAPut(client, 2000);
    } finally {
      client.close();
    }
  });

  it('a watch whose stream drew an etcd member that is down opens another on a member that is up', async () => {
    // etcd3 picks a host at random for each stream, and one that is down fails it at once (ECONNREFUSED).
    // Failing the watch there made a node's re-join a draw against the dead member, each loss a probe round
    // (up to 1 s) more. Here the first stream is drawn on a member that is down, every time.
    const [deadPort] = await freePorts(1);
    const dead = new Etcd3({ hosts: `http://127.0.0.1:${deadPort}` });
    const client = new Etcd3({ hosts: etcd.endpoint });
    const streams = client.watchClient.watch.bind(client.watchClient);
    let drawn = 0;
    client.watchClient.watch = (o) => (drawn++ === 0 ? dead.watchClient.watch(o) : streams(o));
    try {
      await expectWatchSeesAPut(client, 5000);
      expect(drawn).toBe(2);
    } finally {
      client.close();
      dead.close();
    }
  });

  it('pickNode gives the same answer on every node, and only live nodes', async () => {
    const cluster = uniqueName('c');
    const nodes = [await join(cluster, 'a'), await join(cluster, 'b'), await join(cluster, 'c')];
    await eventually(() => nodes.every((n) => n.addressBook().getAvailableNodes().length === 3), 'all see 3 nodes');
    const names = Array.from({ length: 200 }, (_, i) => `svc${i}`);
    const picks = nodes.map((n) => names.map((x) => n.addressBook().pickNode(x)));
    expect(picks[1]).toEqual(picks[0]);
    expect(picks[2]).toEqual(picks[0]);
    expect(new Set(picks[0])).toEqual(new Set(['a', 'b', 'c']));
    await nodes[2]!.leave();
    await eventually(() => nodes[0]!.addressBook().getAvailableNodes().length === 2, 'a sees c leave');
    expect(names.map((x) => nodes[0]!.addressBook().pickNode(x)).filter((p) => p === 'c')).toEqual([]);
  });
});

describe('spawnRegister', () => {
  it('many concurrent calls from every node: each name starts exactly once; a contested name once, the rest ERR_LIBIPC_EXISTS', async () => {
    const cluster = uniqueName('c');
    const launchers = [recorder(), recorder(), recorder()];
    const nodes = [await join(cluster, 'a'), await join(cluster, 'b'), await join(cluster, 'c')];
    nodes.forEach((n, i) => n.registerLauncher('L', launchers[i]!));
    await eventually(() => nodes.every((n) => n.addressBook().getAvailableNodes().length === 3), 'all see 3 nodes');
    const calls = nodes.flatMap((n, i) => [
      ...Array.from({ length: 20 }, (_, k) => n.spawnRegister('L', `w${i}.${k}`, [i, k])),
      ...Array.from({ length: 3 }, () => n.spawnRegister('L', 'contested')),
    ]);
    const results = await Promise.allSettled(calls);
    const failed = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    expect(failed.map((e) => e.code)).toEqual(Array(8).fill('ERR_LIBIPC_EXISTS'));
    const started = launchers.flatMap((l) => l.started).sort();
    const expected = [...nodes.flatMap((_, i) => Array.from({ length: 20 }, (_, k) => `w${i}.${k}`)), 'contested'].sort();
    expect(started).toEqual(expected);
    // Each ran where placement says, and every node's book agrees.
    for (const r of results) {
      if (r.status !== 'fulfilled') continue;
      expect(['a', 'b', 'c']).toContain(r.value.node);
    }
    for (const name of expected) {
      const placed = nodes[0]!.addressBook().pickNode(name);
      await eventually(() => nodes.every((n) => n.locate(name) === placed), `${name} located on ${placed} everywhere`);
    }
    await expect(nodes[0]!.spawnRegister('L', 'w1.1')).rejects.toMatchObject({ code: 'ERR_LIBIPC_EXISTS' });
  });

  it('a launcher failure rejects with ERR_LIBIPC_SPAWN and leaves no registration', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const b = await join(cluster, 'b');
    const failing: Launcher = { spawn: async () => Promise.reject(new Error('no binary')) };
    a.registerLauncher('L', failing);
    b.registerLauncher('L', failing);
    await eventually(() => a.addressBook().getAvailableNodes().length === 2, 'a sees b');
    const names = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'];
    const results = await Promise.allSettled(names.map((x) => a.spawnRegister('L', x)));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringContaining('no binary') });
    }
    for (const x of names) await eventually(() => a.locate(x) === undefined && b.locate(x) === undefined, `${x} unregistered`);
  });
});

describe('after an outage', () => {
  it('a node withdraws registrations of its own that it does not know of (a write whose answer was lost)', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    await a.register('real');
    const root = `libipc/cluster/${cluster}/`;
    const lease = (await admin.get(`${root}b/n/a`).exec()).kvs[0]!.lease;
    // As if a claim had committed and etcd went away before answering: a registration a never recorded.
    await admin.put(`${root}b/p/ghost/a`).value('{}').lease(lease);
    await eventually(() => a.locate('ghost') === 'a', 'a sees the ghost');
    const back = once(a, 'available');
    (a as unknown as { availability: { lost(err: unknown): void } }).availability.lost(new Error('test: etcd went away'));
    await back;
    await eventually(() => a.locate('ghost') === undefined, 'the ghost withdrawn');
    expect(a.locate('real')).toBe('a');
    expect((await admin.get(`${root}b/p/ghost/a`).exec()).kvs).toHaveLength(0);
  });
});

describe('requests', () => {
  it('a request delivered twice, or written again for a running daemon, starts it once', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const b = await join(cluster, 'b');
    const lb = recorder();
    b.registerLauncher('L', lb);
    await eventually(() => a.addressBook().getAvailableNodes().length === 2, 'a sees b');
    const root = `libipc/cluster/${cluster}/`;
    const lease = (await admin.get(`${root}b/n/b`).exec()).kvs[0]!.lease;
    const request = { launcher: 'L', processName: 'x', id: 'test.1' };
    const key = `${root}i/b/s/x`;
    await admin.put(key).value(JSON.stringify(request)).lease(lease);
    await eventually(() => lb.started.length === 1, 'b starts x');
    // The same request again (as a replayed watch event would deliver it), then a new request for x.
    const { kvs } = await admin.get(`${root}b/p/x/b`).exec();
    expect(kvs).toHaveLength(1);
    const internals = b as unknown as { daemons: { onRequest(name: string, kv: unknown): void } };
    internals.daemons.onRequest('x', { key: Buffer.from(key), value: Buffer.from(JSON.stringify(request)), mod_revision: kvs[0]!.mod_revision });
    await admin.put(key).value(JSON.stringify({ ...request, id: 'test.2' })).lease(lease);
    // The second request is withdrawn (x runs already), and x was started once.
    const deadline = Date.now() + 10_000;
    while ((await admin.get(key).exec()).kvs.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await admin.get(key).exec()).kvs).toHaveLength(0);
    expect((await admin.getAll().prefix(`${root}a/`).keys()).length).toBe(0);
    expect(lb.started).toEqual(['x']);
    expect(a.locate('x') ?? b.locate('x')).toBe('b');
  });
});

describe('leader', () => {
  it("a hung spawn or recover() does not stop the leader placing other daemons, nor leave()", async () => {
    const cluster = uniqueName('c');
    const started: string[] = [];
    const launchers: Record<string, Launcher> = {
      // spawn of 'stuck' never resolves.
      H: { spawn: (d) => (d.processName === 'stuck' ? new Promise(() => {}) : Promise.resolve()), recover: async function* () { yield { launcher: 'H', processName: 'stuck' }; } },
      // recover() as a plain array.
      L: { spawn: async (d) => void started.push(d.processName), recover: () => [{ launcher: 'L', processName: 'l1' }, { launcher: 'L', processName: 'l2' }] },
      // recover() that never finishes.
      S: { spawn: async () => undefined, recover: async function* () { await new Promise(() => {}); } },
    };
    const a = await join(cluster, 'a', { spawnTimeoutMs: 1000, recoveryIntervalMs: 3_600_000 });
    for (const [name, l] of Object.entries(launchers)) a.registerLauncher(name, l);
    const failures: Array<{ launcher?: string; error: Error }> = [];
    a.on('daemon-failed', (f) => failures.push(f));
    const b = await join(cluster, 'b', { spawnTimeoutMs: 1000, recoveryIntervalMs: 3_600_000 });
    for (const [name, l] of Object.entries(launchers)) b.registerLauncher(name, l);
    await eventually(() => started.length === 2, 'l1 and l2 started', 15_000);
    expect(started.sort()).toEqual(['l1', 'l2']);
    await eventually(() => a.locate('stuck') !== undefined, 'stuck assigned');
    await eventually(() => failures.some((f) => f.launcher === 'S' && f.error.message.includes('recover()')), 'the hung recover() reported');
    const t0 = performance.now();
    await Promise.all([a.leave(), b.leave()]);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it("a node stands for leader under its own lease: the lead passes on when that lease goes, and the node stands again", async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const b = await join(cluster, 'b');
    expect(a.isLeader).toBe(true);
    const root = `libipc/cluster/${cluster}/b/`;
    const leaseOf = async (node: string) => (await admin.getAll().prefix(`${root}n/`).exec()).kvs.find((kv) => kv.key.toString() === `${root}n/${node}`)!.lease;
    const candidacies = async () => (await admin.getAll().prefix(`${root}election/`).exec()).kvs.map((kv) => [kv.value.toString(), kv.lease]).sort();
    expect(await candidacies()).toEqual([
      ['a', await leaseOf('a')],
      ['b', await leaseOf('b')],
    ]);
    // etcd drops a's lease (as when a crashes): its candidacy goes with it, b leads, and a re-joins behind b.
    const bLeads = once(b, 'leader');
    const aDown = once(a, 'unavailable');
    await admin.leaseClient.leaseRevoke({ ID: await leaseOf('a') });
    await bLeads;
    await aDown;
    await once(a, 'available');
    expect(a.isLeader).toBe(false);
    expect(a.leader).toBe('b');
    const after = await candidacies();
    expect(after.map(([n]) => n).sort()).toEqual(['a', 'b']);
    expect(after.find(([n]) => n === 'a')![1]).toBe(await leaseOf('a'));
  });

  it('a leader whose candidacy is gone (it does not know yet) has its assignments refused by the fence', async () => {
    const cluster = uniqueName('c');
    const wanted: string[] = [];
    const la = recorder(wanted);
    const lb = recorder();
    const a = await join(cluster, 'a', { recoveryIntervalMs: 3_600_000 });
    a.registerLauncher('L', la);
    const b = await join(cluster, 'b', { recoveryIntervalMs: 3_600_000 });
    b.registerLauncher('L', lb);
    expect(a.isLeader).toBe(true);
    const placed: unknown[] = [];
    a.on('daemon-placed', (p) => placed.push(p));
    b.on('daemon-placed', (p) => placed.push(p));
    // Record what a's assignment transactions answer.
    const internals = a as unknown as { daemons: Record<string, (...args: unknown[]) => Promise<{ kind: string }>>; recovery: { trigger(): void } };
    const outcomes: string[] = [];
    for (const m of ['startHere', 'request'] as const) {
      const orig = internals.daemons[m]!.bind(internals.daemons);
      internals.daemons[m] = async (...args) => {
        const r = await orig(...args);
        outcomes.push(r.kind);
        return r;
      };
    }
    // a stops seeing the cluster change (its watch cut without it noticing); its candidacy is deleted behind its
    // back, and it recovers at once: only the fence can stop its writes.
    const book = (a as unknown as { book: { watch: { drop(): void }; resume(): Promise<void> } }).book;
    book.watch.drop();
    const prefix = `libipc/cluster/${cluster}/b/election/`;
    const candidacy = (await admin.getAll().prefix(prefix).exec()).kvs.find((kv) => kv.value.toString() === 'a')!;
    await admin.kv.deleteRange({ key: candidacy.key });
    const follower = once(a, 'follower');
    wanted.push('late0', 'late1', 'late2');
    internals.recovery.trigger();
    await eventually(() => outcomes.length > 0, 'a tried to assign');
    await book.resume();
    await follower;
    expect(new Set(outcomes)).toEqual(new Set(['deposed']));
    await eventually(() => b.isLeader, 'b leads');
    expect(a.isLeader).toBe(false);
    expect(placed).toEqual([]);
    expect([...la.started, ...lb.started]).toEqual([]);
    expect((await admin.getAll().prefix(`libipc/cluster/${cluster}/a/`).keys()).length).toBe(0);
  });

  it('leader and follower events: one leader at a time, the next one when it leaves', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const aLeader = once(a, 'leader');
    const b = await join(cluster, 'b');
    const bFollower = once(b, 'follower');
    await aLeader;
    expect(await bFollower).toEqual(['a']);
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    const bLeader = once(b, 'leader');
    await a.leave();
    await bLeader;
    expect(b.isLeader).toBe(true);
    expect(a.isLeader).toBe(false);
  });
});

describe('registry bridge', () => {
  it("mirrors a one-machine registry domain: register ⇒ locatable cluster-wide; unregister or death ⇒ gone", async () => {
    const cluster = uniqueName('c');
    const domain = uniqueName('bridge');
    const registry = new ServiceRegistry(domain);
    try {
      registry.register('audio.0', 'audio.0.ctl', 'audio.0.rep');
      const a = await join(cluster, 'a', { registry });
      const b = await join(cluster, 'b');
      await eventually(() => b.locate('audio.0') === 'a', 'b locates audio.0 on a');
      registry.register('audio.1', 'audio.1.ctl', 'audio.1.rep');
      await eventually(() => b.locate('audio.1') === 'a', 'b locates audio.1 on a');
      registry.unregister('audio.0');
      await eventually(() => b.locate('audio.0') === undefined, 'audio.0 gone');

      const child = spawnNode(fileURLToPath(new URL('./fixtures/registry-service.mjs', import.meta.url)), [domain, 'worker.7']);
      await child.line('registered worker.7');
      await eventually(() => b.locate('worker.7') === 'a', 'b locates worker.7 on a');
      await child.kill('SIGKILL');
      await eventually(() => b.locate('worker.7') === undefined, 'worker.7 gone after its process died');
      expect(a.addressBook().getProcessList('a')).toEqual(['audio.1']);
      await a.leave();
      await eventually(() => b.locate('audio.1') === undefined, 'audio.1 gone with a');
    } finally {
      registry.clear();
      registry.close();
    }
    expect(shmObjects(domain)).toEqual([]);
  });
});
