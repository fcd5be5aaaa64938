import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '@libipc/registry';
import { processIdentity, watchExit } from '@libipc/shm';
import { type FailoverEvent, type GroupConfig, ServiceGroup } from '../src/index.js';
import { reloadOrder } from '../src/service-group.js';
import { liveChildren, shmObjects, spawnNode, uniqueName, waitForFileLine } from '../../../test/helpers.js';
import { groupFixture } from './harness.js';

const member = fileURLToPath(new URL('./fixtures/member.mjs', import.meta.url));
const host = fileURLToPath(new URL('./fixtures/host.mjs', import.meta.url));
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  expect(liveChildren()).toEqual([]);
});

function setup(config: Partial<GroupConfig> = {}, env: Record<string, string> = {}) {
  return groupFixture('grp', cleanup, (log) => ({
    serviceName: 'svc',
    executable: process.execPath,
    args: [member],
    replicas: 2,
    stdio: 'inherit',
    env: { MEMBER_LOG: log, ...env },
    ...config,
  }));
}

const nextEvent = <T>(emitter: ServiceGroup, name: string) => once(emitter, name).then(([e]) => e as T);

describe('ServiceGroup', () => {
  it("a 300 MB primary SIGKILLed: failover comes from its death lease, before the primary's exit event", async () => {
    const { group } = setup({ autoRespawn: false }, { MEMBER_BALLAST_MB: '300' });
    await group.start();
    const primary = group.primary()!;
    const order: string[] = [];
    const failover = nextEvent<FailoverEvent>(group, 'failover').then((f) => (order.push('failover'), f));
    const exited = new Promise<void>((resolve) =>
      group.on('instance-exit', (e: { name: string }) => e.name === primary.name && (order.push('instance-exit'), resolve())),
    );
    process.kill(primary.pid!, 'SIGKILL');
    const f = await failover;
    await exited;
    expect(order).toEqual(['failover', 'instance-exit']);
    expect(f).toMatchObject({ previous: 'svc.0', primary: 'svc.1', reason: 'exit' });
  });

  it('seed flow: the primary is SIGKILLed, the standby takes over, the dead one is respawned as standby', async () => {
    const { group, registry } = setup();
    await group.start();
    const first = group.primary()!;
    expect(first.name).toBe('svc.0');
    expect(group.instances().map((i) => i.role)).toEqual(['primary', 'standby']);
    expect(group.aliveCount()).toBe(2);
    const { epoch } = registry.groupState('svc');
    expect(registry.findAll('svc.').map((e) => e.name).sort()).toEqual(['svc.0', 'svc.1']);

    const failover = nextEvent<FailoverEvent>(group, 'failover');
    const respawn = nextEvent<{ name: string }>(group, 'respawn');
    process.kill(first.pid!, 'SIGKILL');
    const f = await failover;
    expect(f).toMatchObject({ previous: 'svc.0', primary: 'svc.1', reason: 'exit' });
    expect(f.epoch).toBeGreaterThan(epoch);
    expect(registry.groupState('svc')).toEqual({ epoch: f.epoch, primary: 'svc.1' });
    expect(await group.healthCheck()).toBe(true);
    expect(await group.healthCheck()).toBe(false);

    expect((await respawn).name).toBe('svc.0');
    expect(group.aliveCount()).toBe(2);
    expect(group.instances().map((i) => i.role)).toEqual(['standby', 'primary']);
  });

  it('chaos: 50 SIGKILLs of the current primary in a row — always exactly one primary, epochs strictly increase', async () => {
    const { group } = setup({
      replicas: 3,
      restart: { policy: 'always', backoff: { initialMs: 1, factor: 1, maxMs: 1 }, maxRestarts: 1000, windowMs: 60_000 },
    });
    await group.start();
    let lastEpoch = group.primary()!.epoch;
    for (let i = 0; i < 50; i++) {
      // Wait until every replica is back, so that each kill has standbys to fail over to.
      while (group.aliveCount() < 3 || group.instances().some((x) => x.role === 'starting' || x.role === 'dead')) {
        await nextEvent(group, 'respawn');
      }
      const victim = group.primary()!;
      const failover = nextEvent<FailoverEvent>(group, 'failover');
      process.kill(victim.pid!, 'SIGKILL');
      const f = await failover;
      expect(f.previous).toBe(victim.name);
      expect(f.epoch).toBeGreaterThan(lastEpoch);
      lastEpoch = f.epoch;
      expect(group.instances().filter((x) => x.role === 'primary').map((x) => x.name)).toEqual([f.primary]);
    }
  }, 120_000);

  it('a hung primary (SIGSTOP) is fenced and replaced; once SIGCONTed its GroupMember knows it is not primary', async () => {
    const { group, log } = setup({ heartbeatTimeoutMs: 1500, onHung: 'fence' });
    await group.start();
    const hung = group.primary()!;
    await waitForFileLine(log, (l) => l.startsWith(`svc.0 ${hung.pid} role primary`));
    const failover = nextEvent<FailoverEvent>(group, 'failover');
    process.kill(hung.pid!, 'SIGSTOP');
    try {
      const f = await failover;
      expect(f).toMatchObject({ previous: 'svc.0', primary: 'svc.1', reason: 'hung' });
      // Fenced, not killed.
      expect(processIdentity(hung.pid!)).toBeDefined();
    } finally {
      process.kill(hung.pid!, 'SIGCONT');
    }
    await waitForFileLine(log, (l) => l.startsWith(`svc.0 ${hung.pid} role standby`));
    expect(group.primary()!.name).toBe('svc.1');
  });

  it('with no standby left, the respawned instance becomes primary and the failover names the one lost', async () => {
    const { group } = setup({ replicas: 1 });
    await group.start();
    const only = group.primary()!;
    const degraded = nextEvent(group, 'degraded');
    const failover = nextEvent<FailoverEvent>(group, 'failover');
    process.kill(only.pid!, 'SIGKILL');
    await degraded;
    expect(group.primary()).toBeUndefined();
    const f = await failover;
    expect(f).toMatchObject({ previous: 'svc.0', primary: 'svc.0', reason: 'exit' });
    expect(f.epoch).toBeGreaterThan(only.epoch);
    expect(group.primary()!.pid).not.toBe(only.pid);
  });

  it('a crash-looping replica goes failed and the group reports it is degraded', async () => {
    const { group } = setup(
      { restart: { policy: 'always', backoff: { initialMs: 10, factor: 1, maxMs: 10 }, maxRestarts: 2, windowMs: 60_000 } },
      { MEMBER_CRASH_IDS: '1' },
    );
    const failed = nextEvent<{ name: string; reason: string }>(group, 'failed');
    const degraded = nextEvent(group, 'degraded');
    await group.start();
    expect((await failed).name).toBe('svc.1');
    await degraded;
    expect(group.primary()!.name).toBe('svc.0');
    expect(group.instances()[1]!.role).toBe('failed');
  });

  it('stop() leaves no instance, no zombie and no registry entry', async () => {
    const { group, registry } = setup({ replicas: 3 });
    await group.start();
    const pids = group.instances().map((i) => i.pid!);
    await group.stop();
    for (const pid of pids) expect(processIdentity(pid)).toBeUndefined();
    expect(registry.findAll('svc.')).toEqual([]);
    expect(group.aliveCount()).toBe(0);
  });

  it('refuses a bad configuration at construction with a stable code', () => {
    const registry = new ServiceRegistry(uniqueName('cfg'));
    cleanup.push(() => registry.close());
    const base = { serviceName: 'svc', executable: process.execPath };
    expect(() => new ServiceGroup(registry, { ...base, replicas: 0 })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => new ServiceGroup(registry, { ...base, executable: '/nonexistent/bin' })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_SPAWN' }));
    expect(() => new ServiceGroup(registry, { ...base, serviceName: 'bad name' })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }));
    expect(() => new ServiceGroup(registry, { ...base, serviceName: 'x'.repeat(62), replicas: 10 })).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }),
    );
    expect(() => new ServiceGroup(registry, { ...base, onHung: 'nap' as 'kill' })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
  });
});

describe('ServiceGroup.reload', () => {
  it.each([
    { ids: [0, 1, 2], primary: 0, order: [1, 2, 0] },
    { ids: [0, 1, 2], primary: 1, order: [0, 2, 1] },
    { ids: [0, 1], primary: 1, order: [0, 1] },
    { ids: [0], primary: 0, order: [0] },
    { ids: [2, 0, 1], primary: undefined, order: [0, 1, 2] },
  ])('order: $ids with primary $primary → $order', ({ ids, primary, order }) => {
    expect(reloadOrder(ids, primary)).toEqual(order);
  });

  it('every instance replaced, standbys first; one handover with one epoch change, made while the old primary still ran', async () => {
    const { group, registry } = setup({ replicas: 3 });
    await group.start();
    const before = group.instances().map((i) => ({ name: i.name, pid: i.pid! }));
    const oldPrimary = group.primary()!;
    const epoch0 = registry.groupState('svc').epoch;
    const primaries: Array<FailoverEvent & { oldPrimaryAlive: boolean; record: { epoch: number; primary?: string } }> = [];
    group.on('primary', (e: FailoverEvent) =>
      primaries.push({ ...e, oldPrimaryAlive: processIdentity(oldPrimary.pid!) !== undefined, record: registry.groupState('svc') }),
    );
    const exits: string[] = [];
    group.on('instance-exit', (e: { name: string }) => exits.push(e.name));

    const prepared: string[] = [];
    const report = await group.reload({
      graceMs: 2000,
      prepare: (i) => prepared.push(`${i.name} ${i.role} primary=${registry.groupState('svc').primary}`),
    });

    // Each restarted instance is prepared as a standby, before the handover for the fresh ones.
    expect(prepared).toEqual(['svc.1 standby primary=svc.0', 'svc.2 standby primary=svc.0', 'svc.0 standby primary=svc.1']);
    expect(exits).toEqual(['svc.1', 'svc.2', 'svc.0']);
    expect(report.replaced.map((r) => r.name)).toEqual(['svc.1', 'svc.2', 'svc.0']);
    for (const r of report.replaced) {
      expect(r.oldPid).toBe(before.find((b) => b.name === r.name)!.pid);
      expect(r.newPid).toBeDefined();
      expect(r.newPid).not.toBe(r.oldPid);
    }
    for (const b of before) expect(processIdentity(b.pid)).toBeUndefined();
    expect(primaries).toHaveLength(1);
    expect(primaries[0]).toMatchObject({ previous: 'svc.0', primary: 'svc.1', reason: 'reload', epoch: epoch0 + 1, oldPrimaryAlive: true });
    expect(primaries[0]!.record).toEqual({ epoch: epoch0 + 1, primary: 'svc.1' });
    expect(report).toMatchObject({ previous: 'svc.0', primary: 'svc.1', epoch: epoch0 + 1 });
    expect(group.instances().map((i) => i.role)).toEqual(['standby', 'primary', 'standby']);
    expect(group.aliveCount()).toBe(3);
  });

  it('a standby that does not come back stops the reload before the handover: the primary keeps serving', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'libipc-reload-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const crashFile = join(dir, 'crash');
    const { group, registry } = setup({ replicas: 2, restart: { policy: 'never' } }, { MEMBER_CRASH_FILE: crashFile });
    await group.start();
    const primary = group.primary()!;
    const epoch0 = registry.groupState('svc').epoch;
    writeFileSync(crashFile, '1');
    const failed = group.reload({ graceMs: 1000 });
    await expect(failed).rejects.toMatchObject({ code: 'ERR_LIBIPC_ILLEGAL_STATE', message: expect.stringMatching(/svc\.1 did not come back.*svc\.0 keeps serving/) });
    expect(group.primary()).toMatchObject({ name: 'svc.0', pid: primary.pid });
    expect(processIdentity(primary.pid!)).toBeDefined();
    expect(registry.groupState('svc')).toEqual({ epoch: epoch0, primary: 'svc.0' });
  });

  it('refuses a group not started, joins a reload in progress, checks its options', async () => {
    const { group } = setup();
    await expect(group.reload()).rejects.toMatchObject({ code: 'ERR_LIBIPC_ILLEGAL_STATE' });
    await group.start();
    await expect(group.reload({ graceMs: -1 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    await expect(group.reload({ prepare: 'x' as unknown as () => void })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    const primary = group.primary()!;
    await expect(
      group.reload({
        prepare: () => {
          throw new Error('cannot warm up');
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_LIBIPC_ILLEGAL_STATE', message: expect.stringContaining('cannot warm up') });
    expect(group.primary()?.name).toBe(primary.name);
    await expect(group.reload(null as unknown as { graceMs: number })).resolves.toBeDefined();
    const a = group.reload();
    expect(group.reload()).toBe(a);
    expect((await a).replaced).toHaveLength(2);
  });
});

describe('host lifecycle', () => {
  it('a host killed with SIGKILL: its instances exit by themselves, and a new host starts cleanly', async () => {
    const domain = uniqueName('host');
    const h = spawnNode(host, [domain, 'svc'], {}, [], { underReaper: true });
    cleanup.push(() => h.kill());
    const hostPid = Number((await h.line('host')).split(' ')[1]);
    const pids = (await h.line('instances')).split(' ').slice(1).map(Number);
    const ids = pids.map((pid) => processIdentity(pid)!);
    process.kill(hostPid, 'SIGKILL');
    await Promise.all(ids.map((id) => watchExit(id.pid, id.startTime)));
    await h.exited;

    const registry = new ServiceRegistry(domain);
    const group = new ServiceGroup(registry, { serviceName: 'svc', executable: process.execPath, args: [member], replicas: 2 });
    cleanup.push(async () => (await group.stop(1000), registry.close()));
    await group.start();
    expect(group.primary()!.name).toBe('svc.0');
    expect(group.aliveCount()).toBe(2);
  });

  it('a new host stops live leftovers of a dead host before spawning, never refusing to start', async () => {
    const domain = uniqueName('left');
    const h = spawnNode(host, [domain, 'svc'], { MEMBER_STAY: '1' }, [], { underReaper: true });
    cleanup.push(() => h.kill());
    const hostPid = Number((await h.line('host')).split(' ')[1]);
    const ids = (await h.line('instances')).split(' ').slice(1).map((p) => processIdentity(Number(p))!);
    process.kill(hostPid, 'SIGKILL');
    // The instances stay: they are leftovers now.
    expect(ids.every((id) => processIdentity(id.pid) !== undefined)).toBe(true);

    const registry = new ServiceRegistry(domain);
    const group = new ServiceGroup(registry, { serviceName: 'svc', executable: process.execPath, args: [member], replicas: 2 });
    cleanup.push(async () => (await group.stop(1000), registry.close()));
    await group.start();
    await Promise.all(ids.map((id) => watchExit(id.pid, id.startTime)));
    expect(group.aliveCount()).toBe(2);
    expect(group.instances().map((i) => i.pid)).not.toContain(ids[0]!.pid);
    await group.stop(1000);
    await h.exited;
  });

  it('SIGINT to the host: a clean stop, no respawn, nothing left', async () => {
    const domain = uniqueName('int');
    const h = spawnNode(host, [domain, 'svc']);
    cleanup.push(() => h.kill());
    await h.line('primary');
    const ids = (await h.line('instances')).split(' ').slice(1).map((p) => processIdentity(Number(p))!);
    h.child.kill('SIGINT');
    await h.line('stopped');
    expect(await h.exited).toEqual({ code: 0, signal: null });
    for (const id of ids) expect(processIdentity(id.pid)).toBeUndefined();
    const registry = new ServiceRegistry(domain);
    expect(registry.findAll('svc.')).toEqual([]);
    registry.close();
    expect(shmObjects(domain)).toEqual([]);
  });
});
