import { describe, expect, it } from 'vitest';
import { attachSegment, SharedMemory } from '@libipc/shm';
import { ServiceRegistry } from '../src/index.js';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { fixture, openRegistry, startChild } from './harness.js';

describe('ServiceRegistry', () => {
  it('shows every process of a domain the same entries, and keeps domains apart', async () => {
    const audio = uniqueName('audio');
    const video = uniqueName('video');
    const a = openRegistry(audio);
    expect(a.register('mixer', 'mixer.ctl', 'mixer.rep', { meta: 'rate=48000' })).toBe(true);
    const other = startChild('register.mjs', [audio, 'decoder.0', 'decoder.1']);
    await other.line('registered decoder.1');
    const elsewhere = startChild('register.mjs', [video, 'decoder.0']);
    await elsewhere.line('registered decoder.0');

    const pid = other.child.pid!;
    expect(a.list().map((e) => e.name)).toEqual(['decoder.0', 'decoder.1', 'mixer']);
    expect(a.findAll('decoder.').map((e) => `${e.name}@${e.pid}`)).toEqual([`decoder.0@${pid}`, `decoder.1@${pid}`]);
    expect(a.find('decoder.0')).toMatchObject({ controlChannel: 'decoder.0.ctl', replyChannel: 'decoder.0.rep', pid });
    const mixer = a.find('mixer')!;
    expect(mixer).toMatchObject({ pid: process.pid, meta: 'rate=48000' });
    expect(typeof mixer.startTime).toBe('bigint');
    expect(mixer.registeredAt).toBeInstanceOf(Date);

    const viewer = startChild('list.mjs', [audio]);
    expect(await viewer.line('list')).toBe(`list ${JSON.stringify([`decoder.0@${pid}`, `decoder.1@${pid}`, `mixer@${process.pid}`])}`);
    const v = openRegistry(video);
    expect(v.list().map((e) => `${e.name}@${e.pid}`)).toEqual([`decoder.0@${elsewhere.child.pid}`]);
    expect(v.find('mixer')).toBeUndefined();
  });

  it('refuses a name a live process holds, and lets only its holder unregister by pid', () => {
    const r = openRegistry(uniqueName('dup'));
    expect(r.register('svc', 'a', 'b')).toBe(true);
    expect(r.register('svc', 'c', 'd')).toBe(false);
    expect(r.unregister('svc', process.pid + 1)).toBe(false);
    expect(r.unregister('svc', process.pid)).toBe(true);
    expect(r.unregister('svc')).toBe(false);
    expect(r.find('svc')).toBeUndefined();
  });

  it('registers another running process by pid', async () => {
    const r = openRegistry(uniqueName('bypid'));
    const elsewhere = openRegistry(uniqueName('elsewhere'));
    const c = startChild('register.mjs', [elsewhere.domain, 'x']);
    await c.line('registered');
    expect(r.register('child', 'a', 'b', { pid: c.child.pid! })).toBe(true);
    expect(r.find('child')?.pid).toBe(c.child.pid);
    await c.kill();
    expect(r.find('child')).toBeUndefined();
  });

  it('throws ERR_LIBIPC_REGISTRY_FULL naming the capacity and gc(), after reusing dead slots', async () => {
    const domain = uniqueName('full');
    const r = openRegistry(domain, { capacity: 2 });
    expect(r.capacity).toBe(2);
    const gone = startChild('register.mjs', [domain, 'gone', '--exit']);
    await gone.exited;
    expect(r.register('a', 'a', 'a')).toBe(true);
    // 'gone' is dead: its slot is taken before the registry counts as full.
    expect(r.register('b', 'b', 'b')).toBe(true);
    expect(r.list().map((e) => e.name)).toEqual(['a', 'b']);
    let error: unknown;
    try {
      r.register('c', 'c', 'c');
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'ERR_LIBIPC_REGISTRY_FULL', name: 'RegistryFullError' });
    expect((error as Error).message).toMatch(/all 2 entries/);
    expect((error as Error).message).toMatch(/gc\(\)/);
    r.unregister('a');
    expect(r.register('c', 'c', 'c')).toBe(true);
  });

  it('uses the capacity stored in the segment when opening an existing domain', () => {
    const domain = uniqueName('cap');
    const first = openRegistry(domain, { capacity: 3 });
    const second = openRegistry(domain, { capacity: 100 });
    expect(second.capacity).toBe(3);
    expect(first.capacity).toBe(3);
  });

  it('refuses invalid names with ERR_LIBIPC_INVALID_NAME, never truncating them', () => {
    expect(() => new ServiceRegistry('a/b')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }));
    expect(() => new ServiceRegistry('x'.repeat(64))).toThrow(/64 bytes long/);
    const r = openRegistry(uniqueName('names'));
    const long = 's'.repeat(64);
    for (const bad of [() => r.register(long, 'a', 'b'), () => r.register('ok', 'a b', 'c'), () => r.register('ok', 'a', '')]) {
      expect(bad).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }));
    }
    expect(() => r.find('é')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }));
    expect(() => r.findAll('a/')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }));
    expect(() => r.claimPrimary('g', 'no way', 0)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }));
    const longest = 's'.repeat(63);
    expect(r.register(longest, longest, longest)).toBe(true);
    expect(r.find(longest)).toMatchObject({ name: longest, controlChannel: longest, replyChannel: longest });
    expect(r.list().map((e) => e.name)).toEqual([longest]);
  });

  it('refuses bad arguments with ERR_LIBIPC_INVALID_ARGUMENT', () => {
    const invalid = expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    expect(() => new ServiceRegistry(uniqueName('c'), { capacity: 0 })).toThrow(invalid);
    expect(() => new ServiceRegistry(uniqueName('c'), { capacity: 1.5 })).toThrow(invalid);
    expect(() => new ServiceRegistry(uniqueName('c'), { lockTimeoutMs: Infinity })).toThrow(invalid);
    const r = openRegistry(uniqueName('args'));
    expect(() => r.register('m', 'a', 'b', { meta: 'x'.repeat(257) })).toThrow(/257 bytes.*at most.*256|most an entry holds is 256/);
    expect(() => r.register('m', 'a', 'b', { meta: 'é'.repeat(129) })).toThrow(invalid);
    expect(() => r.register('m', 'a', 'b', { pid: -1 })).toThrow(invalid);
    expect(() => r.claimPrimary('g', 'i', -1)).toThrow(invalid);
    expect(r.list()).toEqual([]);
    const meta = 'é'.repeat(128); // exactly 256 bytes: kept whole
    expect(r.register('m', 'a', 'b', { meta })).toBe(true);
    expect(r.find('m')?.meta).toBe(meta);
  });

  it('stamps heartbeats without the lock, only on the caller’s own entry', () => {
    const domain = uniqueName('hb');
    const r = openRegistry(domain);
    expect(() => r.heartbeat('svc')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
    r.register('svc', 'a', 'b');
    expect(r.find('svc')?.heartbeatAt).toBeUndefined();
    r.heartbeat('svc');
    const first = r.find('svc')!.heartbeatAt!;
    expect(Math.abs(first.getTime() - Date.now())).toBeLessThan(5000);
    // Another handle of the same process finds the entry too.
    const second = openRegistry(domain);
    second.heartbeat('svc');
    expect(second.find('svc')!.heartbeatAt!.getTime()).toBeGreaterThanOrEqual(first.getTime());
    r.unregister('svc');
    expect(() => r.heartbeat('svc')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
    // A re-registration in the same slot is a new entry: it starts without a heartbeat.
    r.register('svc', 'a', 'b');
    expect(r.find('svc')?.heartbeatAt).toBeUndefined();
  });

  it('keeps group records: compare-and-swap epochs that only grow', () => {
    const r = openRegistry(uniqueName('grp'));
    expect(r.groupState('audio_compute')).toEqual({ epoch: 0 });
    expect(r.claimPrimary('audio_compute', 'audio_compute.0', 1)).toBeUndefined();
    expect(r.claimPrimary('audio_compute', 'audio_compute.0', 0)).toBe(1);
    expect(r.claimPrimary('audio_compute', 'audio_compute.1', 0)).toBeUndefined();
    expect(r.groupState('audio_compute')).toEqual({ epoch: 1, primary: 'audio_compute.0' });
    expect(r.claimPrimary('audio_compute', 'audio_compute.1', 1)).toBe(2);
    expect(r.groupState('audio_compute')).toEqual({ epoch: 2, primary: 'audio_compute.1' });
    expect(r.groupState('other')).toEqual({ epoch: 0 });
    r.clear();
    expect(r.groupState('audio_compute').epoch).toBe(2);
  });

  it('gc() and clear() remove entries', async () => {
    const domain = uniqueName('gc');
    const r = openRegistry(domain);
    const c = startChild('register.mjs', [domain, 'd1', 'd2', '--exit']);
    await c.exited;
    r.register('live', 'a', 'b');
    expect(r.gc()).toBe(2);
    expect(r.gc()).toBe(0);
    expect(r.list().map((e) => e.name)).toEqual(['live']);
    r.clear();
    expect(r.list()).toEqual([]);
  });

  it('refuses a segment of another layout version or with a corrupt header (ERR_LIBIPC_INCOMPATIBLE)', () => {
    const incompatible = expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' });

    const v2 = uniqueName('v1');
    const other = attachSegment({ kind: 'registry', name: v2, layoutVersion: 1, size: 4096 });
    expect(() => new ServiceRegistry(v2)).toThrow(incompatible);
    expect(() => new ServiceRegistry(v2)).toThrow(/layout version 1/);
    SharedMemory.unlink(v2, { kind: 'registry' });
    other.mem.close();

    const garbage = uniqueName('garbage');
    const mem = SharedMemory.create(garbage, 65536, { kind: 'registry' });
    new Uint8Array(mem.buffer).fill(0xab);
    expect(() => new ServiceRegistry(garbage)).toThrow(incompatible);
    SharedMemory.unlink(garbage, { kind: 'registry' });
    mem.close();

    // A valid segment header whose registry header does not add up: never read as entries.
    const bent = uniqueName('bent');
    const seg = attachSegment({
      kind: 'registry',
      name: bent,
      layoutVersion: 2,
      size: 65536,
      init: (m) => new DataView(m.buffer).setUint32(128, 0xffffffff, true),
    });
    try {
      expect(() => new ServiceRegistry(bent)).toThrow(incompatible);
      expect(() => new ServiceRegistry(bent)).toThrow(/corrupt/);
    } finally {
      SharedMemory.unlink(bent, { kind: 'registry' });
      seg.mem.close();
    }
    expect(shmObjects(v2).concat(shmObjects(garbage), shmObjects(bent))).toEqual([]);
  });

  it('removes the segment when the last user closes with no live entries', async () => {
    const domain = uniqueName('last');
    const a = new ServiceRegistry(domain);
    const b = new ServiceRegistry(domain);
    a.register('svc', 'a', 'b');
    a.close();
    expect(shmObjects(domain)).toEqual([`libipc.registry.${domain}`]);
    b.close();
    // A live entry keeps it: its process still uses the domain.
    expect(shmObjects(domain)).toEqual([`libipc.registry.${domain}`]);
    const c = new ServiceRegistry(domain);
    c.unregister('svc');
    c.close();
    expect(shmObjects(domain)).toEqual([]);
    // Entries of dead processes do not keep it.
    const d = new ServiceRegistry(domain);
    const gone = spawnNode(fixture('register.mjs'), [domain, 'gone', '--exit']);
    await gone.exited;
    d.close();
    expect(shmObjects(domain)).toEqual([]);
    expect(() => d.list()).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_CLOSED' }));
    d.close(); // idempotent
  });

  it('never leaves an opener alone on a removed segment while others close (open/close race)', async () => {
    const domain = uniqueName('race');
    const racers = [0, 1, 2].map((i) => startChild('open-close.mjs', [domain, String(i), '300']));
    for (const r of racers) expect(await r.line((l) => l === 'ok' || l.startsWith('split'), 60_000)).toBe('ok');
    await Promise.all(racers.map((r) => r.exited));
    expect(shmObjects(domain)).toEqual([]);
  });
});
