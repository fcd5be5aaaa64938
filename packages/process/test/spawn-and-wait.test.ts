import { afterEach, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '@libipc/registry';
import { ExitedEarlyError, watchExit } from '@libipc/shm';
import { ManagedProcess, forceKill, spawnAndWait, shutdown, type ProcessHandle } from '../src/index.js';
import { fixture, node, track, trackManaged } from './support.js';
import { liveChildren, shmObjects, uniqueName } from '../../../test/helpers.js';

const registries: ServiceRegistry[] = [];
function openRegistry(): ServiceRegistry {
  const r = new ServiceRegistry(uniqueName('proc'));
  registries.push(r);
  return r;
}
afterEach(() => {
  for (const r of registries.splice(0)) {
    r.close();
    expect(shmObjects(r.domain), 'registry segment left behind').toEqual([]);
  }
});

describe('spawnAndWait', () => {
  it('resolves once the child registers the name', async () => {
    const registry = openRegistry();
    const h = track(await spawnAndWait(registry, 'audio', node, [fixture('register.mjs'), registry.domain, 'audio', '200'], { timeoutMs: 30_000 }));
    expect(h.isAlive()).toBe(true);
    expect(registry.find('audio')?.pid).toBe(h.pid);
    await shutdown(h, 5000);
  });

  it('accepts a registration by a descendant (a /bin/sh wrapper that does not exec)', async () => {
    const registry = openRegistry();
    const h = track(
      await spawnAndWait(registry, 'wrapped', fixture('wrapper.sh'), [node, fixture('register.mjs'), registry.domain, 'wrapped'], {
        timeoutMs: 30_000,
        killTree: true,
      }),
    );
    const entry = registry.find('wrapped')!;
    expect(entry.pid).not.toBe(h.pid);
    await shutdown(h, 5000);
    await watchExit(entry.pid);
  });

  it('rejects with ERR_LIBIPC_EXITED_EARLY the moment the child dies before registering, with its stderr', async () => {
    const registry = openRegistry();
    const t0 = Date.now();
    const err = (await spawnAndWait(registry, 'never', node, [fixture('die-before-register.mjs')], { timeoutMs: 30_000, stdio: 'pipe' }).catch(
      (e: unknown) => e,
    )) as ExitedEarlyError;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(ExitedEarlyError);
    expect(err).toMatchObject({ code: 'ERR_LIBIPC_EXITED_EARLY', exitCode: 3 });
    expect(err.stderrTail).toContain('config error');
  });

  it('rejects with ERR_LIBIPC_TIMEOUT at the timeout and kills the child', async () => {
    const registry = openRegistry();
    const t0 = Date.now();
    await expect(spawnAndWait(registry, 'silent', node, [fixture('serve.mjs')], { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'ERR_LIBIPC_TIMEOUT',
    });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(liveChildren()).toEqual([]);
  });

  it('ignores the stale entry of a dead earlier run', async () => {
    const registry = openRegistry();
    const first = track(await spawnAndWait(registry, 'svc', node, [fixture('register.mjs'), registry.domain, 'svc'], { timeoutMs: 30_000 }));
    forceKill(first); // no chance to unregister: its entry stays behind, dead
    await first.exit;
    const second = track(await spawnAndWait(registry, 'svc', node, [fixture('register.mjs'), registry.domain, 'svc', '300'], { timeoutMs: 30_000 }));
    expect(registry.find('svc')?.pid).toBe(second.pid);
    await shutdown(second, 5000);
  });

  it('does not take a live registration by another process for the child’s, and waits for the real one', async () => {
    const registry = openRegistry();
    // This test process holds the name (an older instance still running); it lets go after the child started.
    expect(registry.register('shared', 'c', 'r')).toBe(true);
    let h: ProcessHandle | undefined;
    const waiting = spawnAndWait(registry, 'shared', fixture('wrapper.sh'), [node, fixture('register.mjs'), registry.domain, 'shared', '500'], {
      timeoutMs: 30_000,
      killTree: true,
    }).then((x) => (h = track(x)));
    await new Promise((r) => setImmediate(r));
    expect(h).toBeUndefined();
    registry.unregister('shared');
    await waiting;
    const entry = registry.find('shared')!;
    expect(entry.pid).not.toBe(process.pid);
    await shutdown(h!, 5000);
  });

  it("ManagedProcess readiness { registered }: running once the name is registered in that domain", async () => {
    const domain = uniqueName('procm');
    const m = trackManaged(
      new ManagedProcess({ name: 'reg', command: node, args: [fixture('register.mjs'), domain, 'reg', '200'], readiness: { registered: 'reg', domain }, readyTimeoutMs: 30_000 }),
    );
    const registry = new ServiceRegistry(domain);
    registries.push(registry);
    await m.start();
    expect(registry.find('reg')?.pid).toBe(m.pid);
    await m.stop(5000);
    expect(registry.find('reg')).toBeUndefined();
  });
});
