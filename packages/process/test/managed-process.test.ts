import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { processIdentity, watchExit } from '@libipc/shm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManagedProcess, type Transition } from '../src/index.js';
import { fixture, node, stateReached, trackManaged } from './support.js';
import { liveChildren } from '../../../test/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'libipc-managed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const file = (what: string) => join(dir, `${what}-${seq++}`);

function record(m: ManagedProcess): Transition[] {
  const seen: Transition[] = [];
  m.on('state', (t: Transition) => seen.push(t));
  return seen;
}
const path = (ts: Transition[]) => ts.map((t) => t.to).join(' ');
const delayOf = (t: Transition) => Number(/restarting in (\d+) ms/.exec(t.reason)?.[1]);

describe('ManagedProcess', () => {
  it('starts, runs and stops: stopped → starting → running → stopping → stopped', async () => {
    const m = trackManaged(new ManagedProcess({ name: 'svc', command: node, args: [fixture('serve.mjs')] }));
    const seen = record(m);
    await m.start();
    expect(m.state).toBe('running');
    expect(m.pid).toBeGreaterThan(0);
    expect(liveChildren()).toEqual([m.pid]);
    expect(m.status()).toMatchObject({ name: 'svc', state: 'running', restarts: 0 });
    expect(m.status().startedAt).toBeInstanceOf(Date);
    const st = await m.stop(10_000);
    expect(st.signal).toBe('SIGTERM');
    expect(path(seen)).toBe('starting running stopping stopped');
    expect(seen[0]).toMatchObject({ from: 'stopped', to: 'starting', reason: 'start()' });
    expect(m.pid).toBeUndefined();
  });

  it("readiness 'ready': running only after READY on the fd; a /bin/sh service works too", async () => {
    const m = trackManaged(new ManagedProcess({ name: 'r', command: node, args: [fixture('serve.mjs')], readiness: 'ready', readyTimeoutMs: 20_000 }));
    const seen = record(m);
    await m.start();
    expect(seen.at(-1)?.reason).toMatch(/wrote READY/);
    const sh = trackManaged(new ManagedProcess({ name: 'sh', command: fixture('ready.sh'), readiness: 'ready', readyTimeoutMs: 20_000 }));
    await sh.start();
    expect(sh.state).toBe('running');
  });

  it("readiness 'ready' that never comes: start rejects with ERR_LIBIPC_TIMEOUT, the child is killed", async () => {
    const m = trackManaged(new ManagedProcess({ name: 'slow', command: 'sleep', args: ['100'], readiness: 'ready', readyTimeoutMs: 300, stopTimeoutMs: 2000, restart: { policy: 'never' } }));
    await expect(m.start()).rejects.toMatchObject({ code: 'ERR_LIBIPC_TIMEOUT' });
    expect(m.state).toBe('failed');
    expect(m.status().lastExit?.signal).toBe('SIGTERM');
    expect(liveChildren()).toEqual([]);
  });

  it('a missing executable fails start() with ERR_LIBIPC_SPAWN and state failed', async () => {
    const m = trackManaged(new ManagedProcess({ name: 'nope', command: 'libipc-no-such-program' }));
    await expect(m.start()).rejects.toMatchObject({ code: 'ERR_LIBIPC_SPAWN' });
    expect(m.status()).toMatchObject({ state: 'failed', reason: expect.stringContaining('libipc-no-such-program') });
  });

  it('restarts a crash with growing backoff and resets it after minUptimeMs', async () => {
    // Runs 1-3 crash at once (a shell: milliseconds even on a loaded machine), run 4 stays up 2.5 s (> minUptimeMs
    // 2 s), then crashes; runs 5+ crash at once.
    const counter = file('counter');
    const m = trackManaged(new ManagedProcess({
      name: 'crashy',
      command: 'sh',
      args: [fixture('crash-plan.sh'), counter, '0,0,0,2.5,0'],
      restart: { policy: 'on-failure', backoff: { initialMs: 50, factor: 2, maxMs: 10_000, jitter: 0 }, minUptimeMs: 2000, maxRestarts: 100, windowMs: 60_000 },
    }));
    const seen = record(m);
    const sixth = new Promise<void>((resolve) => m.on('state', () => seen.filter((t) => t.to === 'backoff').length === 6 && resolve()));
    await m.start();
    await sixth;
    const delays = seen.filter((t) => t.to === 'backoff').map(delayOf);
    // Runs 1-3 double the delay; run 4 outlived minUptimeMs, so its crash starts again at initialMs.
    expect(delays).toEqual([50, 100, 200, 50, 100, 200]);
    expect(m.restarts).toBeGreaterThanOrEqual(5);
    expect(m.status().lastExit).toMatchObject({ exitCode: 1 });
    await m.stop(5000);
    expect(m.state).toBe('stopped');
  });

  it('a crash loop ends in failed with the reason and last exit; start() from failed works once the cause is fixed', async () => {
    const config = file('config');
    const m = trackManaged(new ManagedProcess({
      name: 'loop',
      command: node,
      args: [fixture('needs-file.mjs'), config],
      // minUptimeMs as long as the window: a crash that took long to start (node on a loaded machine) is still a crash loop.
      restart: { policy: 'always', backoff: { initialMs: 10, factor: 1.5, maxMs: 100 }, maxRestarts: 3, windowMs: 60_000, minUptimeMs: 60_000 },
    }));
    const seen = record(m);
    const failed = stateReached(m, 'failed');
    await m.start();
    const t = await failed;
    expect(t.reason).toMatch(/gave up after 3 restart\(s\) within 60000 ms/);
    expect(m.status()).toMatchObject({ state: 'failed', restarts: 3, lastExit: { exitCode: 1 } });
    expect(seen.filter((s) => s.to === 'starting')).toHaveLength(4);
    expect(liveChildren()).toEqual([]);
    writeFileSync(config, 'fixed');
    await m.start();
    expect(m.status()).toMatchObject({ state: 'running', restarts: 0 });
  });

  it("policy 'on-failure' leaves a clean exit stopped; 'never' leaves a crash failed; stopExitCodes are not restarted", async () => {
    const clean = trackManaged(new ManagedProcess({ name: 'clean', command: node, args: [fixture('exit.mjs'), '0'] }));
    const cleanStopped = stateReached(clean, 'stopped');
    await clean.start();
    expect((await cleanStopped).reason).toMatch(/exit code 0.*does not restart/);

    const never = trackManaged(new ManagedProcess({ name: 'never', command: node, args: [fixture('exit.mjs'), '9'], restart: { policy: 'never' } }));
    const neverFailed = stateReached(never, 'failed');
    await never.start();
    expect((await neverFailed).reason).toMatch(/exit code 9/);

    const coded = trackManaged(new ManagedProcess({ name: 'coded', command: node, args: [fixture('exit.mjs'), '78'], restart: { policy: 'always', stopExitCodes: [78] } }));
    const codedStopped = stateReached(coded, 'stopped');
    await coded.start();
    await codedStopped;
    expect(coded.restarts).toBe(0);
  });

  it('stop() during backoff cancels the pending restart', async () => {
    const m = trackManaged(new ManagedProcess({
      name: 'bo',
      command: node,
      args: [fixture('exit.mjs'), '1'],
      restart: { policy: 'always', backoff: { initialMs: 400, factor: 2, maxMs: 1000 } },
    }));
    const seen = record(m);
    const backoff = stateReached(m, 'backoff');
    await m.start();
    await backoff;
    expect(m.status().nextRestartAt).toBeInstanceOf(Date);
    await m.stop();
    expect(m.state).toBe('stopped');
    expect(m.status().nextRestartAt).toBeUndefined();
    // A restart would have come 400 ms after the crash; nothing can be awaited for "did not happen".
    await new Promise((r) => setTimeout(r, 800));
    expect(path(seen)).toBe('starting running backoff stopped');
    expect(liveChildren()).toEqual([]);
  });

  it('stop() during a slow start cancels it promptly', async () => {
    const m = trackManaged(new ManagedProcess({ name: 'cancel', command: 'sleep', args: ['100'], readiness: 'ready', readyTimeoutMs: 60_000 }));
    const starting = m.start();
    await stateReached(m, 'starting');
    const t0 = Date.now();
    await m.stop(5000);
    expect(Date.now() - t0).toBeLessThan(5000);
    await expect(starting).rejects.toMatchObject({ code: 'ERR_LIBIPC_ILLEGAL_STATE' });
    expect(m.state).toBe('stopped');
  });

  it('restart() replaces the child', async () => {
    const m = trackManaged(new ManagedProcess({ name: 'rs', command: node, args: [fixture('serve.mjs')], readiness: 'ready' }));
    await m.start();
    const first = m.pid;
    await m.restart();
    expect(m.state).toBe('running');
    expect(m.pid).not.toBe(first);
    expect(liveChildren()).toEqual([m.pid]);
  });

  it('a storm of concurrent start/stop calls settles to the last call, with one child at most', async () => {
    const m = trackManaged(new ManagedProcess({ name: 'storm', command: node, args: [fixture('serve.mjs')], readiness: 'ready', stopTimeoutMs: 5000 }));
    const seen = record(m);
    for (const lastIsStart of [true, false]) {
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) calls.push(Math.random() < 0.5 ? m.start() : m.stop());
      calls.push(lastIsStart ? m.start() : m.stop());
      await Promise.allSettled(calls);
      expect(m.state).toBe(lastIsStart ? 'running' : 'stopped');
      expect(liveChildren()).toEqual(lastIsStart ? [m.pid] : []);
    }
    // Every emitted transition followed the table (an illegal one would have thrown inside and broken the chain).
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.from).toBe(seen[i - 1]!.to);
  });

  it('killTree: when the leader crashes, what it left in its group is killed too', async () => {
    const pidfile = file('pid');
    const m = trackManaged(new ManagedProcess({ name: 'orphans', command: node, args: [fixture('tree.mjs'), '--crash'], env: { PIDFILE: pidfile }, killTree: true, restart: { policy: 'never' } }));
    const failed = stateReached(m, 'failed');
    await m.start();
    await failed;
    const grandchild = Number(readFileSync(pidfile, 'utf8'));
    let timer: NodeJS.Timeout | undefined;
    const stillAlive = new Promise((r) => (timer = setTimeout(r, 20_000, 'still alive')));
    expect(await Promise.race([watchExit(grandchild).then(() => 'gone'), stillAlive])).toBe('gone');
    clearTimeout(timer);
    expect(processIdentity(grandchild)).toBeUndefined();
  });

  it('refuses bad specs at construction with stable codes', () => {
    const ok = { name: 'ok', command: node };
    const bad: Array<[object, string]> = [
      [{ ...ok, name: '' }, 'ERR_LIBIPC_INVALID_NAME'],
      [{ ...ok, name: 'has space' }, 'ERR_LIBIPC_INVALID_NAME'],
      [{ ...ok, command: '' }, 'ERR_LIBIPC_INVALID_ARGUMENT'],
      [{ ...ok, args: ['a', 2] }, 'ERR_LIBIPC_INVALID_ARGUMENT'],
      [{ ...ok, readyTimeoutMs: -1 }, 'ERR_LIBIPC_INVALID_ARGUMENT'],
      [{ ...ok, readyTimeoutMs: Number.NaN }, 'ERR_LIBIPC_INVALID_ARGUMENT'],
      [{ ...ok, stopTimeoutMs: -1 }, 'ERR_LIBIPC_INVALID_ARGUMENT'],
      [{ ...ok, restart: { policy: 'always', backoff: { initialMs: 100, factor: 0.9, maxMs: 1000 } } }, 'ERR_LIBIPC_INVALID_ARGUMENT'],
      [{ ...ok, restart: { policy: 'always', backoff: { initialMs: 100, factor: 2, maxMs: 50 } } }, 'ERR_LIBIPC_INVALID_ARGUMENT'],
      [{ ...ok, readiness: 'soon' }, 'ERR_LIBIPC_INVALID_ARGUMENT'],
      [{ ...ok, readiness: { registered: '' } }, 'ERR_LIBIPC_INVALID_NAME'],
      [{ ...ok, readiness: { registered: 'x', domain: 'a/b' } }, 'ERR_LIBIPC_INVALID_NAME'],
    ];
    for (const [spec, code] of bad) {
      expect(() => new ManagedProcess(spec as never), JSON.stringify(spec)).toThrowError(expect.objectContaining({ code }));
    }
  });
});
