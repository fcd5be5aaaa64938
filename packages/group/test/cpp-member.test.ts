// A Node ServiceGroup with one C++ member (libipc::GroupMember, test/cpp/member.cc built with plain g++ against the
// public headers) and one Node member (fixtures/member.mjs): failover both ways with SIGKILL, a hung C++ primary
// fenced, the C++ member leaving with its host, and the C++ reading of the environment contract matching Node's.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readInstanceContext, spawn, waitForReady } from '@libipc/process';
import { ServiceRegistry } from '@libipc/registry';
import { processIdentity, selfIdentity, watchExit } from '@libipc/shm';
import { type FailoverEvent, type GroupConfig, ServiceGroup } from '../src/index.js';
import { compileCpp, noCompiler } from '../../../test/cpp.js';
import { liveChildren, shmObjects, spawnNode, uniqueName, waitForFileLine } from '../../../test/helpers.js';
import { groupFixture } from './harness.js';

const source = fileURLToPath(new URL('./cpp/member.cc', import.meta.url));
const nodeMember = fileURLToPath(new URL('./fixtures/member.mjs', import.meta.url));
const mixedHost = fileURLToPath(new URL('./fixtures/mixed-host.mjs', import.meta.url));
let cpp: { bin: string; remove(): void } | undefined;
const cleanup: Array<() => unknown> = [];

/** Instance 0 runs the C++ member, the others member.mjs: one /bin/sh that execs either (exec keeps the pid). */
function mixedConfig(log: string, extra: Partial<GroupConfig> = {}): GroupConfig {
  return {
    serviceName: 'svc',
    executable: '/bin/sh',
    args: ['-c', 'if [ "$LIBIPC_INSTANCE_ID" = 0 ]; then exec "$CPP_MEMBER" "$@"; else exec "$NODE" "$NODE_MEMBER" "$@"; fi', 'member'],
    replicas: 2,
    stdio: 'inherit',
    ...extra,
    env: { CPP_MEMBER: cpp!.bin, NODE: process.execPath, NODE_MEMBER: nodeMember, MEMBER_LOG: log, ...extra.env },
  };
}

function setup(extra: Partial<GroupConfig> = {}) {
  return groupFixture('cxgrp', cleanup, (log) => mixedConfig(log, extra));
}

/**
 * The members left as their host started to die (its lease broke), so the domain may outlive them, with the dying
 * host still attached: its next user (here, a registry opened and closed) finds no live entry and removes it.
 */
function expectNothingLeft(domain: string): void {
  const next = new ServiceRegistry(domain);
  expect(next.findAll('svc.')).toEqual([]);
  next.close();
  expect(shmObjects(domain)).toEqual([]);
}

const nextEvent = <T>(emitter: ServiceGroup, name: string) => once(emitter, name).then(([e]) => e as T);
const logged = (log: string, line: string) => waitForFileLine(log, (l) => l === line);

describe.skipIf(noCompiler !== undefined)(`C++ GroupMember in a Node ServiceGroup${noCompiler ? ` (skipped: ${noCompiler})` : ''}`, () => {
  beforeAll(() => {
    cpp = compileCpp(source);
  });
  afterAll(() => cpp?.remove());
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
    expect(liveChildren()).toEqual([]);
  });

  it('fails over both ways with SIGKILL: C++ primary → Node takes over; Node primary → the respawned C++ takes over', async () => {
    const { group, registry, log } = setup();
    await group.start();
    const [cppMember, nodeStandby] = group.instances();
    expect(group.primary()!.name).toBe('svc.0');
    const e1 = registry.groupState('svc').epoch;
    // Both sides read the same record: the C++ member says primary, the Node one standby, at the same epoch.
    await logged(log, `svc.0 ${cppMember!.pid} role primary ${e1}`);
    // (the Node member logs changes of role only: its standby line may predate the election, at epoch e1 - 1)
    await waitForFileLine(log, (l) => l.startsWith(`svc.1 ${nodeStandby!.pid} role standby `));
    expect(registry.find('svc.0')).toMatchObject({ pid: cppMember!.pid, leased: true, controlChannel: 'ctrl_0', replyChannel: 'reply_0' });

    // C++ primary SIGKILLed: its death lease breaks, the Node standby is promoted and reads it.
    const respawn = nextEvent<{ name: string; pid: number }>(group, 'respawn');
    let failover = nextEvent<FailoverEvent>(group, 'failover');
    process.kill(cppMember!.pid!, 'SIGKILL');
    const f1 = await failover;
    expect(f1).toMatchObject({ previous: 'svc.0', primary: 'svc.1', reason: 'exit', epoch: e1 + 1 });
    await logged(log, `svc.1 ${nodeStandby!.pid} role primary ${f1.epoch}`);
    const reborn = await respawn;
    expect(reborn.name).toBe('svc.0');
    await logged(log, `svc.0 ${reborn.pid} role standby ${f1.epoch}`);

    // Node primary SIGKILLed: the respawned C++ member is promoted and reads it.
    failover = nextEvent<FailoverEvent>(group, 'failover');
    process.kill(nodeStandby!.pid!, 'SIGKILL');
    const f2 = await failover;
    expect(f2).toMatchObject({ previous: 'svc.1', primary: 'svc.0', reason: 'exit', epoch: f1.epoch + 1 });
    await logged(log, `svc.0 ${reborn.pid} role primary ${f2.epoch}`);
    expect(registry.groupState('svc')).toEqual({ epoch: f2.epoch, primary: 'svc.0' });
    // Its fresh read (is_primary(), like Node's isPrimary()) agrees.
    process.kill(reborn.pid, 'SIGUSR1');
    await logged(log, `svc.0 ${reborn.pid} is_primary 1 ${f2.epoch}`);
  });

  it('chaos: 30 SIGKILLs of the primary, C++ and Node in turn, members beating every 1 ms — one primary, epochs only grow', async () => {
    const { group, log } = setup({
      restart: { policy: 'always', backoff: { initialMs: 1, factor: 1, maxMs: 1 }, maxRestarts: 1000, windowMs: 60_000 },
      env: { MEMBER_HEARTBEAT_MS: '1' }, // a kill often lands inside a registry call
    });
    await group.start();
    let lastEpoch = group.primary()!.epoch;
    for (let i = 0; i < 30; i++) {
      // Every replica back, so that each kill has a standby to fail over to.
      while (group.instances().some((x) => x.role !== 'primary' && x.role !== 'standby')) await nextEvent(group, 'respawn');
      const victim = group.primary()!;
      const failover = nextEvent<FailoverEvent>(group, 'failover');
      process.kill(victim.pid!, 'SIGKILL');
      const f = await failover;
      expect(f.previous).toBe(victim.name);
      expect(f.primary).not.toBe(victim.name); // C++ → Node, then Node → C++
      expect(f.epoch).toBeGreaterThan(lastEpoch);
      lastEpoch = f.epoch;
      expect(group.instances().filter((x) => x.role === 'primary').map((x) => x.name)).toEqual([f.primary]);
      // The new primary, C++ or Node, reads it from the record.
      await waitForFileLine(log, (l) => l.startsWith(`${f.primary} ${group.primary()!.pid} role primary ${f.epoch}`));
    }
  }, 120_000);

  it('a hung C++ primary (SIGSTOP) is fenced, not killed; once SIGCONTed it reports it is not primary', async () => {
    const { group, log } = setup({ heartbeatTimeoutMs: 1500, onHung: 'fence' });
    await group.start();
    const [hung, node] = group.instances();
    await waitForFileLine(log, (l) => l.startsWith(`svc.0 ${hung!.pid} role primary`));
    const failover = nextEvent<FailoverEvent>(group, 'failover');
    process.kill(hung!.pid!, 'SIGSTOP');
    let f: FailoverEvent;
    try {
      f = await failover;
      expect(f).toMatchObject({ previous: 'svc.0', primary: 'svc.1', reason: 'hung' });
      expect(processIdentity(hung!.pid!)).toBeDefined(); // fenced, not killed
    } finally {
      process.kill(hung!.pid!, 'SIGCONT');
    }
    await logged(log, `svc.1 ${node!.pid} role primary ${f.epoch}`);
    await logged(log, `svc.0 ${hung!.pid} role standby ${f.epoch}`);
    process.kill(hung!.pid!, 'SIGUSR1');
    await logged(log, `svc.0 ${hung!.pid} is_primary 0 ${f.epoch}`);
    expect(group.primary()!.name).toBe('svc.1');
  });

  it('the C++ member exits with its host: a Node host SIGKILLed never leaves it running', async () => {
    const domain = uniqueName('cxhost');
    const dir = mkdtempSync(join(tmpdir(), 'libipc-cxgroup-'));
    const log = join(dir, 'members.log');
    const host = spawnNode(mixedHost, [domain, JSON.stringify(mixedConfig(log))], {}, [], { underReaper: true });
    cleanup.push(async () => {
      await host.kill();
      rmSync(dir, { recursive: true, force: true });
    });
    const hostPid = Number((await host.line('host ')).split(' ')[1]);
    const ids = (await host.line('instances ')).split(' ').slice(1, 3).map((p) => processIdentity(Number(p))!);
    await waitForFileLine(log, (l) => l.startsWith(`svc.0 ${ids[0]!.pid} role primary`));
    process.kill(hostPid, 'SIGKILL');
    // Both members (C++ first) notice and leave by themselves.
    await Promise.all(ids.map((id) => watchExit(id.pid, id.startTime)));
    await host.exited;
    expectNothingLeft(domain);
  });

  it("a 300 MB host SIGKILLed: the C++ member learns it from the host's death lease, before the host's exit is reported", async () => {
    const domain = uniqueName('cxlease');
    const dir = mkdtempSync(join(tmpdir(), 'libipc-cxgroup-'));
    const log = join(dir, 'members.log');
    const host = spawnNode(mixedHost, [domain, JSON.stringify(mixedConfig(log))], { HOST_BALLAST_MB: '300' }, [], { underReaper: true });
    cleanup.push(async () => {
      await host.kill();
      rmSync(dir, { recursive: true, force: true });
    });
    const hostPid = Number((await host.line('host ', 60_000)).split(' ')[1]);
    const hostId = processIdentity(hostPid)!;
    const line = await host.line('instances ', 60_000);
    const ids = line.split(' ').slice(1, 3).map((p) => processIdentity(Number(p))!);
    await waitForFileLine(log, (l) => l.startsWith(`svc.0 ${ids[0]!.pid} role primary`));
    const order: string[] = [];
    const seen = waitForFileLine(log, (l) => l === `svc.0 ${ids[0]!.pid} host-exit`).then(() => order.push('member saw it'));
    const exited = watchExit(hostPid, hostId.startTime).then(() => order.push('host exit'));
    process.kill(hostPid, 'SIGKILL');
    await Promise.all([seen, exited]);
    expect(order).toEqual(['member saw it', 'host exit']);
    await Promise.all(ids.map((id) => watchExit(id.pid, id.startTime)));
    await host.exited;
    expectNothingLeft(domain);
  });

  it('exit_with_host off: the C++ member outlives its host and keeps beating; the next host stops it (SIGTERM) and starts clean', async () => {
    const { group, registry, log } = setup();
    const host = spawnNode(mixedHost, [registry.domain, JSON.stringify(mixedConfig(log, { env: { MEMBER_STAY: '1' } }))], {}, [], { underReaper: true });
    cleanup.push(() => host.kill());
    const hostPid = Number((await host.line('host ')).split(' ')[1]);
    const ids = (await host.line('instances ')).split(' ').slice(1, 3).map((p) => processIdentity(Number(p))!);
    await waitForFileLine(log, (l) => l.startsWith(`svc.0 ${ids[0]!.pid} role primary`));
    process.kill(hostPid, 'SIGKILL');
    await waitForFileLine(log, (l) => l === `svc.0 ${ids[0]!.pid} host-exit`);
    // Still there, still beating.
    const beat = registry.find('svc.0')!.heartbeatAt!.getTime();
    const deadline = Date.now() + 20_000;
    while (registry.find('svc.0')!.heartbeatAt!.getTime() === beat && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(registry.find('svc.0')).toMatchObject({ pid: ids[0]!.pid });
    expect(registry.find('svc.0')!.heartbeatAt!.getTime()).toBeGreaterThan(beat);

    await group.start(); // the new host (same domain and log) stops the leftovers first
    await Promise.all(ids.map((id) => watchExit(id.pid, id.startTime)));
    expect(group.instances().map((i) => i.pid)).not.toContain(ids[0]!.pid);
    expect(group.primary()!.name).toBe('svc.0');
    await host.exited; // its reaper ends once the leftovers are gone
  });

  it('reads the environment contract exactly like Node (table)', () => {
    const me = selfIdentity();
    const base = { LIBIPC_DOMAIN: 'd1', LIBIPC_SERVICE: 'audio' };
    const cases: Array<[Record<string, string>, string[]]> = [
      [{ ...base, LIBIPC_INSTANCE_ID: '3' }, []],
      [base, ['7']], // the id from the last argument
      [{ ...base, LIBIPC_INSTANCE_ID: '2' }, ['9']], // the variable wins
      [{ ...base, LIBIPC_INSTANCE_ID: '0', LIBIPC_PARENT_PID: String(me.pid), LIBIPC_PARENT_START: String(me.startTime) }, []],
      [{ ...base, LIBIPC_INSTANCE_ID: '0', LIBIPC_PARENT_PID: '12', LIBIPC_PARENT_START: 'soon' }, []], // no parent
      [{ ...base, LIBIPC_INSTANCE_ID: '0', LIBIPC_PARENT_PID: '0', LIBIPC_PARENT_START: '5' }, []], // no parent
      [{ LIBIPC_SERVICE: 'audio', LIBIPC_INSTANCE_ID: '1' }, []], // no domain
      [{ LIBIPC_DOMAIN: 'd1', LIBIPC_INSTANCE_ID: '1' }, []], // no service
      [base, ['x']],
      [{ ...base, LIBIPC_INSTANCE_ID: '-1' }, []],
      [{ ...base, LIBIPC_INSTANCE_ID: '1.5' }, []],
      [{ ...base, LIBIPC_DOMAIN: 'a/b', LIBIPC_INSTANCE_ID: '1' }, []],
      [{ ...base, LIBIPC_SERVICE: 'x'.repeat(62), LIBIPC_INSTANCE_ID: '10' }, []], // instance name too long
    ];
    for (const [env, args] of cases) {
      const argv = [cpp!.bin, 'context', ...args];
      let expected: string;
      try {
        const c = readInstanceContext(env, argv);
        expected = `context ${c.domain} ${c.service} ${c.id} ${c.parent ? `${c.parent.pid}:${c.parent.startTime}` : '-'}`;
      } catch (err) {
        expected = `error ${(err as { code: string }).code}`;
      }
      const got = execFileSync(cpp!.bin, ['context', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' }).trim();
      expect({ env, args, got }).toEqual({ env, args, got: expected });
    }
  });

  it('run by hand: refuses a missing contract, a bad option and a name a live process holds, each with its code', async () => {
    const run = (env: Record<string, string>) =>
      execFileSync(cpp!.bin, ['0'], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(() => run({})).toThrow(/LIBIPC_DOMAIN and LIBIPC_SERVICE are not set: start this process from a ServiceGroup.*ERR_LIBIPC_INVALID_ARGUMENT/s);
    const domain = uniqueName('cxhand');
    const contract = { LIBIPC_DOMAIN: domain, LIBIPC_SERVICE: 'svc' };
    expect(() => run({ ...contract, MEMBER_HEARTBEAT_MS: '0' })).toThrow(/heartbeat_ms must be from 1 to 3600000.*ERR_LIBIPC_INVALID_ARGUMENT/s);

    // One live svc.0 (through @libipc/process: it says READY on its ready fd), then a second one is refused.
    const dir = mkdtempSync(join(tmpdir(), 'libipc-cxgroup-'));
    const log = join(dir, 'members.log');
    const first = spawn('svc.0', cpp!.bin, ['0'], { env: { ...contract, MEMBER_LOG: log } });
    try {
      await waitForReady(first, 20_000);
      await waitForFileLine(log, (l) => l === `svc.0 ${first.pid} joined`);
      expect(() => run(contract)).toThrow(/another live process already holds 'svc.0' in domain 'cxhand.*stop it first.*ERR_LIBIPC_ILLEGAL_STATE/s);
      // It beats on its own thread (its main thread sleeps in sigwait): the entry's heartbeat moves on.
      const r = new ServiceRegistry(domain);
      try {
        expect(r.find('svc.0')).toMatchObject({ pid: first.pid, leased: true });
        const firstBeat = r.find('svc.0')!.heartbeatAt!.getTime();
        const deadline = Date.now() + 20_000;
        while (r.find('svc.0')!.heartbeatAt!.getTime() === firstBeat && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
        expect(r.find('svc.0')!.heartbeatAt!.getTime()).toBeGreaterThan(firstBeat);
      } finally {
        r.close();
      }
    } finally {
      process.kill(first.pid, 'SIGTERM');
      expect(await first.exit).toMatchObject({ exitCode: 0 }); // SIGTERM: leave(), exit 0
      rmSync(dir, { recursive: true, force: true });
    }
    expect(shmObjects(domain)).toEqual([]);
  });
});
