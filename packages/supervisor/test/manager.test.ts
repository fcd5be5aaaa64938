import { connect } from 'node:net';
import { selfIdentity } from '@libipc/shm';
import { describe, expect, it } from 'vitest';
import { shmObjects, uniqueName } from '../../../test/helpers.js';
import { Manager, type ServiceSpec } from '../src/index.js';
import { SERVICE, fixture, freePort, manager, node, svc, tempDir, until } from './support.js';

const sleeper = (name: string, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({ name, command: 'sleep', args: ['1000'], ...extra });

describe('Manager', () => {
  it('StartN 3, Count and StopAll by pattern', async () => {
    const m = manager();
    await m.startN({ ...sleeper('w'), instances: 3 });
    await m.start(sleeper('web-1'));
    await m.start(sleeper('web-2'));
    await m.start(sleeper('api'));
    expect(m.statusAll('w.*').map((s) => s.name)).toEqual(['w.0', 'w.1', 'w.2']);
    expect(m.count('w.*')).toBe(3);
    expect(m.count('w')).toBe(3);
    expect(m.count('w.?')).toBe(3);
    expect(m.count('web-*')).toBe(2);
    expect(m.count()).toBe(6);
    expect(m.status('w.1')).toMatchObject({ service: 'w', instance: 1, state: 'running', pid: expect.any(Number), startTime: expect.any(BigInt) });
    await m.stopAll('w.*');
    expect(m.count('w.*')).toBe(0);
    expect(m.count()).toBe(3);
    expect(m.statusAll('w.*').every((s) => s.state === 'stopped' && s.pid === undefined)).toBe(true);
    await m.stopAll('web-*');
    expect(m.statusAll().filter((s) => s.state === 'running').map((s) => s.name)).toEqual(['api']);
    await m.stopAll('*');
    expect(m.count()).toBe(0);
  });

  it('refuses bad input with stable codes', async () => {
    const m = manager();
    await m.start(sleeper('one'));
    await expect(m.start(sleeper('one'))).rejects.toMatchObject({ code: 'ERR_LIBIPC_EXISTS' });
    await m.startN({ ...sleeper('grp'), instances: 2 });
    await expect(m.start(sleeper('grp.1'))).rejects.toMatchObject({ code: 'ERR_LIBIPC_EXISTS' });
    await expect(m.start({ name: 'x', command: '' })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringContaining('command') });
    await expect(m.startN({ ...sleeper('y'), instances: 0 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    await expect(m.start({ ...sleeper('y'), instances: -1 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringContaining('instances') });
    await expect(m.start(sleeper('bad/name'))).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_NAME' });
    await expect(m.stop('nobody')).rejects.toMatchObject({ code: 'ERR_LIBIPC_NOT_FOUND' });
    await expect(m.restart('nobody')).rejects.toMatchObject({ code: 'ERR_LIBIPC_NOT_FOUND' });
    expect(() => m.status('nobody')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
    expect(() => m.status('grp')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND', message: expect.stringContaining("statusAll('grp')") }));
    for (const p of ['', 'a/b', 'x y', 42, null]) {
      expect(() => m.statusAll(p as string)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
      expect(() => m.count(p as string)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
      await expect(m.stopAll(p as string)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    }
    // Spec fields: wrong types, NaN, out of range, unknown keys.
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ startTimeoutMs: Number.NaN }, 'startTimeoutMs'],
      [{ stopTimeoutMs: -1 }, 'stopTimeoutMs'],
      [{ restartLimit: 1.5 }, 'restartLimit'],
      [{ readiness: { tcp: 0 } }, 'readiness'],
      [{ readiness: 'sometimes' }, 'readiness'],
      [{ logs: { dir: '' } }, 'logs'],
      [{ logs: { dir: '/tmp', maxBytes: 10 } }, 'logs'],
      [{ env: { A: 1 } }, 'env'],
      [{ args: 'x' }, 'args'],
      [{ restart: { policy: 'sometimes' } }, 'restart.policy'],
      [{ restart: { policy: 'always', backoff: { initialMs: 10, factor: 0.5, maxMs: 100 } } }, 'factor'],
      [{ dependson: ['a'] }, "did you mean 'dependsOn'"],
    ];
    for (const [extra, what] of bad) {
      await expect(m.start({ ...sleeper('z'), ...extra } as ServiceSpec), JSON.stringify(extra)).rejects.toMatchObject({
        code: 'ERR_LIBIPC_INVALID_ARGUMENT',
        message: expect.stringContaining(what),
      });
    }
    // null means "the default".
    await m.start({ ...sleeper('nulls'), args: ['1000'], env: null, cwd: null, readiness: null, logs: null } as unknown as ServiceSpec);
    expect(m.status('nulls').state).toBe('running');
    await expect(m.stop('one', Number.NaN)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    expect(() => m.setGlobalEnv({ A: 1 } as unknown as Record<string, string>)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => m.startReconciler(0)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => m.logs('one', { lines: -1 })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => m.logs('one')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_ILLEGAL_STATE' }));
    // Manager options.
    expect(() => new Manager({ reconcileMS: 5 } as never)).toThrow(expect.objectContaining({ message: expect.stringContaining("did you mean 'reconcileMs'") }));
    expect(() => new Manager({ reconcileMs: Number.NaN })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => new Manager({ sinks: [42] } as never)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => new Manager({ store: {} } as never)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => new Manager('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    new Manager(null as never).shutdown();
  });

  it('a missing executable fails at once with ERR_LIBIPC_SPAWN', async () => {
    const m = manager();
    await expect(m.start({ name: 'ghost', command: '/nonexistent/ghost' })).rejects.toMatchObject({ code: 'ERR_LIBIPC_SPAWN' });
    expect(m.status('ghost')).toMatchObject({ state: 'failed', reason: expect.stringContaining('/nonexistent/ghost') });
    const dir = tempDir();
    await expect(m.start({ name: 'ghost2', command: 'no-such-command-here', logs: { dir } })).rejects.toMatchObject({ code: 'ERR_LIBIPC_SPAWN' });
  });

  it('gives each service the environment contract, the global env under its own', async () => {
    const dir = tempDir();
    const m = manager({ env: { TEST_GLOBAL: 'g', TEST_BOTH: 'global' } });
    const logs = { dir };
    await m.start(svc('one', { flags: ['--env', '--ready'], env: { TEST_BOTH: 'spec' }, logs }));
    await m.startN({ ...svc('many', { flags: ['--env', '--ready'], logs }), instances: 2 });
    const me = selfIdentity();
    const envOf = async (name: string) => JSON.parse((await m.logs(name, { stream: 'stdout' })).find((l) => l.includes('"env"'))!.slice(25));
    const one = await envOf('one');
    expect(one.env).toMatchObject({
      LIBIPC_SERVICE: 'one',
      LIBIPC_INSTANCE_ID: '0',
      LIBIPC_PARENT_PID: String(me.pid),
      LIBIPC_PARENT_START: String(me.startTime),
      LIBIPC_READY_FD: '3',
      TEST_GLOBAL: 'g',
      TEST_BOTH: 'spec',
    });
    expect(one.argv).toEqual(['--env', '--ready']);
    expect(one.pid).toBe(m.status('one').pid);
    const many1 = await envOf('many.1');
    expect(many1.env).toMatchObject({ LIBIPC_SERVICE: 'many', LIBIPC_INSTANCE_ID: '1' });
    expect(many1.argv.at(-1)).toBe('1');
    m.setGlobalEnv({ TEST_GLOBAL: 'changed' });
    await m.restart('one');
    const lines = await m.logs('one', { stream: 'stdout' });
    expect(JSON.parse(lines.filter((l) => l.includes('"env"')).at(-1)!.slice(25)).env.TEST_GLOBAL).toBe('changed');
  });

  it('waits for each kind of readiness', async () => {
    const m = manager();
    const tcp = await freePort();
    await m.start(svc('tcp', { flags: ['--tcp', String(tcp), '--delay', '300'], readiness: { tcp } }));
    await new Promise<void>((resolve, reject) => connect(tcp, '127.0.0.1').once('connect', function (this: import('node:net').Socket) {
      this.destroy();
      resolve();
    }).once('error', reject));
    const port = await freePort();
    await m.start(svc('web', { flags: ['--http', String(port), '--delay', '300'], readiness: { http: `http://127.0.0.1:${port}/health` } }));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    await m.start(svc('plain', { flags: [], readiness: 'none' }));
    expect(m.status('plain').state).toBe('running');


    // Not ready in time: the start fails with ERR_LIBIPC_TIMEOUT, the policy then decides.
    // (--ignore-term: ended by SIGKILL, a failure, whether or not it got as far as setting up its handler)
    await expect(m.start(svc('slow', { flags: ['--ignore-term'], startTimeoutMs: 300, stopTimeoutMs: 100, restart: { policy: 'never' } }))).rejects.toMatchObject({
      code: 'ERR_LIBIPC_TIMEOUT',
    });
    await until(m, () => m.status('slow').state === 'failed', 'slow failed');
    const closed = await freePort();
    await expect(m.start(svc('deaf', { flags: [], readiness: { tcp: closed }, startTimeoutMs: 300, restart: { policy: 'never' } }))).rejects.toMatchObject({ code: 'ERR_LIBIPC_TIMEOUT' });
    await until(m, () => m.status('deaf').pid === undefined, 'deaf stopped');
  });

  it('waits for a registration in a @libipc/registry domain', async () => {
    const m = manager();
    const domain = uniqueName('sup');
    await m.start({ name: 'reg', command: node, args: [fixture('register.mjs'), domain, 'reg_svc', '200'], readiness: { registry: 'reg_svc', domain }, startTimeoutMs: 20_000 });
    expect(m.status('reg').state).toBe('running');
    await m.stop('reg');
    expect(shmObjects(domain)).toEqual([]);
  });

  it('restart() restarts a service and its dependents, counted', async () => {
    const m = manager();
    await m.start(svc('a'));
    await m.start(svc('b', { dependsOn: ['a'] }));
    const pids = m.statusAll().map((s) => s.pid);
    await m.restart('a');
    await until(m, () => m.status('b').state === 'running', 'b back');
    const after = m.statusAll();
    expect(after.map((s) => s.pid)).not.toContain(pids[0]);
    expect(after.map((s) => s.pid)).not.toContain(pids[1]);
    expect(after.map((s) => s.restarts)).toEqual([1, 1]);
    expect(after[0]!.uptimeMs).toBeGreaterThanOrEqual(0);
  });

  it('a clean exit that the policy does not restart ends exited; start() runs it again', async () => {
    const m = manager();
    await m.start(svc('job', { flags: ['--exit', '0', '--delay', '100'], readiness: 'none' }));
    await until(m, () => m.status('job').state === 'exited', 'job exited');
    expect(m.status('job').lastExit).toMatchObject({ exitCode: 0 });
    await m.start('job');
    await until(m, () => m.status('job').state === 'exited', 'job exited again');
    await m.stop('job');
    expect(m.status('job').state).toBe('stopped');
  });

  it("restart 'always' never gives up on a service that stays up minUptimeMs between crashes; a fast crash loop still fails", async () => {
    const m = manager();
    // Up ~600 ms each time (at least: a busy machine only makes it longer), minUptimeMs 300, a budget of 2 restarts.
    const restart = { policy: 'always' as const, backoff: { initialMs: 20, factor: 1, maxMs: 20 }, minUptimeMs: 300, maxRestarts: 2, windowMs: 60_000 };
    await m.start(svc('slow', { flags: ['--exit', '1', '--delay', '600'], readiness: 'none', restart }));
    await until(m, () => m.status('slow').restarts >= 4 || m.status('slow').state === 'failed', 'four restarts of slow');
    expect(m.status('slow')).toMatchObject({ state: expect.not.stringMatching(/failed/) });
    await m.start(svc('fast', { flags: ['--exit', '1', '--delay', '0'], readiness: 'none', restart: { ...restart, minUptimeMs: 60_000 } })).catch(() => undefined);
    await until(m, () => m.status('fast').state === 'failed', 'fast to fail');
    expect(m.status('fast').reason).toMatch(/gave up after 2 restart\(s\) within 60000 ms/);
  });

  it('a frozen (SIGSTOP) service is still stopped, by SIGKILL after its grace', async () => {
    const m = manager();
    await m.start(svc('frozen', { flags: ['--ready', '--ignore-term'] }));
    await m.start(svc('child', { dependsOn: ['frozen'] }));
    process.kill(m.status('frozen').pid!, 'SIGSTOP');
    process.kill(m.status('child').pid!, 'SIGSTOP');
    await m.stop('frozen', 200);
    expect(m.statusAll().map((s) => [s.name, s.state])).toEqual([
      ['child', 'stopped'],
      ['frozen', 'stopped'],
    ]);
    expect(m.status('frozen').lastExit).toMatchObject({ signal: 'SIGKILL' });
  });

  it('remove() forgets a service; shutdown() refuses further calls', async () => {
    const m = manager();
    await m.start(sleeper('r'));
    await m.remove('r');
    expect(() => m.status('r')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
    await m.start(sleeper('s'));
    await m.shutdown();
    expect(m.count()).toBe(0);
    await expect(m.start(sleeper('t'))).rejects.toMatchObject({ code: 'ERR_LIBIPC_CLOSED' });
  });
});

export { SERVICE };
