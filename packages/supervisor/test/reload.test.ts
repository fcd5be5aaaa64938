// Manager.reload() with shared listening sockets: real HTTP instances, a client that never stops asking.
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { watchExit } from '@libipc/shm';
import { describe, expect, it } from 'vitest';
import { spawnNode } from '../../../test/helpers.js';
import { type HistoryEvent, type Manager, ReloadError, type ServiceSpec } from '../src/index.js';
import { fixture, freePort, manager, node, onCleanup, pidAlive, processesOf, tempDir } from './support.js';

const APP = fixture('http-app.mjs');

function app(name: string, port: number, extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return { name, command: node, args: [APP], instances: 3, listen: [port], env: { PORT: String(port) }, readiness: 'ready', logs: 'ignore', stopTimeoutMs: 5000, ...extra };
}

/** One request on a new connection: the body, or the error. */
function get(port: number): Promise<{ ok: true; body: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? { ok: true, body } : { ok: false, error: `status ${res.statusCode}` }));
      res.on('error', (e) => resolve({ ok: false, error: e.message }));
    });
    req.on('error', (e) => resolve({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message }));
    // A connection nobody accepts would wait forever: a failure, not a hang.
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
  });
}

/** Clients sending requests back to back (each on a new connection) until stop(); what they got. */
function load(port: number, clients = 2) {
  let running = true;
  const bodies: string[] = [];
  const failures: string[] = [];
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const r = await get(port);
      if (r.ok) bodies.push(r.body);
      else failures.push(r.error);
    }
  });
  return {
    bodies,
    failures,
    /** Resolves once `n` more answers came (the load really runs across what follows). */
    answered: async (n: number) => {
      const target = bodies.length + failures.length + n;
      while (bodies.length + failures.length < target && running) await new Promise((r) => setImmediate(r));
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Polls `check` (a process appearing is no event of the manager's) until it holds, within a deadline. */
async function pollUntil(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pidsOf = (m: Manager, name: string) => m.statusAll(name).map((s) => s.pid!);

describe('Manager.reload with listen', () => {
  it('replaces every instance of a 3-instance HTTP service under load: 0 failed requests, no old pid left', async () => {
    const port = await freePort();
    const m = manager();
    await m.start(app('web', port));
    const before = pidsOf(m, 'web');
    expect(before).toHaveLength(3);
    const history: HistoryEvent[] = [];
    const left: string[] = [];
    m.on('history', (e: HistoryEvent) => history.push(e));
    m.on('state', (c: { name: string; to: string }) => c.to !== 'running' && left.push(`${c.name} → ${c.to}`));

    const client = load(port);
    await client.answered(20);
    // The new version comes from the current environment.
    m.setGlobalEnv({ APP_VERSION: '2' });
    const report = await m.reload('web');
    await client.answered(20);
    await client.stop();

    expect(client.failures).toEqual([]);
    const after = pidsOf(m, 'web');
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    for (const p of before) expect(pidAlive(p)).toBe(false);
    expect(processesOf('web').sort()).toEqual([...after].sort());
    expect(report.services).toEqual(['web']);
    expect(report.replaced.map((r) => r.name)).toEqual(['web.0', 'web.1', 'web.2']);
    expect(report.replaced.map((r) => r.oldPid)).toEqual(before);
    expect(report.replaced.map((r) => r.newPid)).toEqual(after);
    // No instance ever left 'running': at least N were ready throughout.
    expect(left).toEqual([]);
    const answeredBy = new Set(client.bodies.map((b) => Number(b.split(' ')[0])));
    expect(after.some((p) => answeredBy.has(p))).toBe(true);
    expect((await get(port)).ok && (await get(port))).toMatchObject({ ok: true, body: expect.stringMatching(/ 2$/) });

    for (const s of m.statusAll('web')) {
      expect(s.state).toBe('running');
      expect(s.restarts).toBe(1);
      expect(s.contractRestarts).toBe(0);
      expect(s.lastRestart).toMatchObject({ trigger: 'reload', reason: expect.stringContaining('replaced pid') });
    }
    expect(history.filter((e) => e.type === 'restart').map((e) => [e.name, e.trigger])).toEqual([
      ['web.0', 'reload'],
      ['web.1', 'reload'],
      ['web.2', 'reload'],
    ]);
  });

  it('a replacement that never gets ready is stopped; every old instance keeps serving; rejects with ERR_LIBIPC_RELOAD_FAILED', async () => {
    const port = await freePort();
    const m = manager();
    await m.start(app('api', port, { startTimeoutMs: 1500 }));
    const before = pidsOf(m, 'api');
    const client = load(port);
    await client.answered(10);
    m.setGlobalEnv({ APP_NEVER_READY: '1' });
    const err = (await m.reload('api').then(
      () => new Error('reload resolved'),
      (e: unknown) => e,
    )) as ReloadError;
    await client.answered(10);
    await client.stop();

    expect(err).toBeInstanceOf(ReloadError);
    expect(err.code).toBe('ERR_LIBIPC_RELOAD_FAILED');
    expect(err.instance).toBe('api.0');
    expect(err.report.replaced).toEqual([]);
    expect(err.message).toMatch(/did not write READY.*keep serving with their old processes/s);
    expect(client.failures).toEqual([]);
    expect(pidsOf(m, 'api')).toEqual(before);
    for (const p of before) expect(pidAlive(p)).toBe(true);
    // The broken replacement is gone: only the old instances run.
    expect(processesOf('api').sort()).toEqual([...before].sort());
    // Each old instance still answers (the kernel picks which one accepts: ask until each did).
    const seen = new Set<number>();
    for (let i = 0; i < 5000 && seen.size < before.length; i++) {
      const r = await get(port);
      expect(r.ok).toBe(true);
      if (r.ok) seen.add(Number(r.body.split(' ')[0]));
    }
    expect([...seen].sort()).toEqual([...before].sort());
    for (const s of m.statusAll('api')) expect(s).toMatchObject({ state: 'running', restarts: 0 });
  });

  it('a second reload of the same service meanwhile is refused with ERR_LIBIPC_ILLEGAL_STATE; a stopped service is started', async () => {
    const port = await freePort();
    const m = manager();
    await m.start(app('dup', port));
    const first = m.reload('dup');
    await expect(m.reload('dup')).rejects.toMatchObject({ code: 'ERR_LIBIPC_ILLEGAL_STATE', message: expect.stringMatching(/in progress/) });
    await first;
    await m.stop('dup');
    const report = await m.reload('dup');
    expect(report.started).toEqual(['dup.0', 'dup.1', 'dup.2']);
    expect(m.statusAll('dup').every((s) => s.state === 'running')).toBe(true);
    await expect(m.reload('dup', { minAvailable: -1 })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    await expect(m.reload('nope')).rejects.toMatchObject({ code: 'ERR_LIBIPC_NOT_FOUND' });
    await expect(m.reload('nope-*')).rejects.toMatchObject({ code: 'ERR_LIBIPC_NOT_FOUND' });
  });

  it('shutdown() during a reload stops the replacement too: the reload rejects, nothing is left', async () => {
    const port = await freePort();
    const m = manager();
    await m.start(app('bye', port, { instances: 2, startTimeoutMs: 600_000 }));
    m.setGlobalEnv({ APP_NEVER_READY: '1' });
    const before = processesOf('bye').length;
    const reload = m.reload('bye').then(
      () => new Error('reload resolved'),
      (e: unknown) => e as ReloadError,
    );
    await pollUntil(() => processesOf('bye').length > before, 'the replacement spawned');
    await m.shutdown(2000);
    expect(await reload).toBeInstanceOf(ReloadError);
    expect(processesOf('bye')).toEqual([]);
  });

  it('dependents are not restarted by a reload', async () => {
    const port = await freePort();
    const m = manager();
    await m.start(app('db', port, { instances: 2 }));
    await m.start({ name: 'api', command: node, args: [fixture('service.mjs'), '--ready'], readiness: 'ready', logs: 'ignore', dependsOn: ['db'] });
    const api = m.status('api');
    const changes: string[] = [];
    m.on('state', (c: { name: string; to: string }) => c.name === 'api' && changes.push(c.to));
    const report = await m.reload('db');
    expect(report.replaced).toHaveLength(2);
    expect(changes).toEqual([]);
    expect(m.status('api')).toMatchObject({ state: 'running', pid: api.pid, restarts: 0 });
  });

  it('SIGTERM through the preload: an app without a SIGTERM listener drains and exits 0; one with its own listener decides itself', async () => {
    const port = await freePort();
    const m = manager();
    await m.start(app('plain', port, { instances: 1 }));
    await m.stop('plain');
    expect(m.statusAll('plain')[0]!.lastExit).toMatchObject({ exitCode: 0, signal: null });
    await m.start(app('own', port, { instances: 1, env: { PORT: String(port), APP_OWN_TERM: '1' } }));
    expect((await get(port)).ok).toBe(true);
    await m.stop('own');
    expect(m.statusAll('own')[0]!.lastExit).toMatchObject({ exitCode: 7 });
  });

  it('stop() while a replacement gets ready ends the reload at once (ERR_LIBIPC_RELOAD_FAILED naming the stop); nothing is left', async () => {
    const port = await freePort();
    const m = manager();
    await m.start(app('halt', port, { startTimeoutMs: 600_000 }));
    m.setGlobalEnv({ APP_NEVER_READY: '1' });
    const before = processesOf('halt').length;
    const reload = m.reload('halt').then(
      () => new Error('reload resolved'),
      (e: unknown) => e as ReloadError,
    );
    await pollUntil(() => processesOf('halt').length > before, 'the replacement spawned');
    await m.stop('halt');
    const err = await reload;
    expect(err).toBeInstanceOf(ReloadError);
    expect(err.message).toMatch(/halt\.0 left 'running' \((stopping|stopped)/);
    expect(processesOf('halt')).toEqual([]);
  });

  it('the listening socket closes when the service stops, is removed, or the manager shuts down; a port in use fails the start with EADDRINUSE', async () => {
    const port = await freePort();
    const m = manager();
    await m.start(app('sock', port));
    expect((await get(port)).ok).toBe(true);
    await m.stop('sock');
    expect(await get(port)).toEqual({ ok: false, error: 'ECONNREFUSED' });
    await m.start('sock');
    expect((await get(port)).ok).toBe(true);
    await m.remove('sock');
    expect(await get(port)).toEqual({ ok: false, error: 'ECONNREFUSED' });
    const other = manager();
    await other.start(app('sock', port));
    expect((await get(port)).ok).toBe(true);
    await other.shutdown();
    expect(await get(port)).toEqual({ ok: false, error: 'ECONNREFUSED' });
    await m.start(app('sock', port));
    await m.stop('sock');

    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    try {
      await expect(m.start('sock')).rejects.toMatchObject({ code: 'ERR_LIBIPC_SYSTEM', errno: 'EADDRINUSE' });
      expect(m.statusAll('sock')[0]!.state).toBe('failed');
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  it('replaces processes adopted from a manager that was SIGKILLed; the new ones share a new socket on the same port', async () => {
    const path = join(tempDir(), 'store.json');
    const port = await freePort();
    const host = spawnNode(fixture('reload-manager.mjs'), [path, String(port)], {}, [], { underReaper: true });
    onCleanup(async () => {
      host.child.kill('SIGTERM');
      await host.exited;
    });
    const started = JSON.parse((await host.line('READY', 60_000)).slice('READY '.length)) as { manager: number; pids: number[] };
    process.kill(started.manager, 'SIGKILL');
    await watchExit(started.manager);

    const m = manager({ store: path });
    await m.loaded;
    expect(m.statusAll('web').map((s) => [s.pid, s.adopted])).toEqual(started.pids.map((p) => [p, true]));
    // The adopted instances still serve on the socket the dead manager opened.
    expect(await get(port)).toMatchObject({ ok: true });

    const report = await m.reload('web');
    expect(report.replaced.map((r) => r.oldPid)).toEqual(started.pids);
    const after = pidsOf(m, 'web');
    expect(after.filter((p) => started.pids.includes(p))).toEqual([]);
    for (const p of started.pids) expect(pidAlive(p)).toBe(false);
    expect(m.statusAll('web').every((s) => s.state === 'running' && !s.adopted && s.lastRestart?.trigger === 'reload')).toBe(true);
    const answer = await get(port);
    expect(answer.ok && after.includes(Number(answer.body.split(' ')[0]))).toBe(true);
    await m.shutdown(2000);
  });
});
