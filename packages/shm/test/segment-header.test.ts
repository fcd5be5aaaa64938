import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { attachSegment, IdentityTable, SegmentHeader, SharedMemory, selfIdentity } from '../src/index.js';
import { type NodeChild, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { family, fixture } from './fixtures.js';

const spec = (name: string, extra: object = {}) => ({ kind: 'test', name, layoutVersion: 1, size: 4096, ...extra });
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('segment header', () => {
  it('creates a ready segment with magic, kind, version, size and creator identity; a second attach joins it', () => {
    const name = uniqueName('hdr');
    const a = attachSegment(spec(name, { init: (mem: SharedMemory) => (new Uint8Array(mem.buffer)[200] = 42) }));
    const b = attachSegment(spec(name));
    cleanup.push(() => (a.mem.close(), b.mem.close(), SharedMemory.unlink(name, { kind: 'test' })));
    expect([a.created, b.created]).toEqual([true, false]);
    expect(b.header.state).toBe('ready');
    expect(b.header.kind).toBe('test');
    expect(b.header.layoutVersion).toBe(1);
    expect(b.header.size).toBe(4096);
    expect(b.header.creator).toMatchObject({ pid: process.pid, startTime: selfIdentity().startTime });
    expect(new Uint8Array(b.mem.buffer)[200]).toBe(42);
  });

  it('refuses a segment of another kind or layout version, or a corrupt header, with ERR_LIBIPC_INCOMPATIBLE', () => {
    const name = uniqueName('hdr');
    const a = attachSegment(spec(name));
    cleanup.push(() => (a.mem.close(), SharedMemory.unlink(name, { kind: 'test' })));
    expect(() => attachSegment(spec(name, { layoutVersion: 2 }))).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE', message: expect.stringContaining('layout version 1') }),
    );
    new DataView(a.mem.buffer).setUint32(0, 0xdeadbeef, true);
    expect(() => attachSegment(spec(name))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    // A plain segment that is not a libipc one at all.
    const raw = SharedMemory.create(uniqueName('raw'), 64, { kind: 'test' });
    cleanup.push(() => (raw.close(), SharedMemory.unlink(raw.name, { kind: 'test' })));
    expect(() => attachSegment(spec(raw.name))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
  });

  it('refuses foreign bytes as incompatible at once: their state and creator words are not a creator to wait for', () => {
    const foreign = SharedMemory.create(uniqueName('foreign'), 4096, { kind: 'test' });
    cleanup.push(() => (foreign.close(), SharedMemory.unlink(foreign.name, { kind: 'test' })));
    new Uint8Array(foreign.buffer).fill(0xab); // bad magic; "creator pid" 0xabababab is no pid
    expect(() => attachSegment(spec(foreign.name))).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE', message: expect.stringContaining('bad magic') }),
    );
  });

  it('a segment being initialised is invisible: an opener never sees it half-made, and the slower creator joins the first one published', async () => {
    const name = uniqueName('slow');
    const creator = spawnNode(fixture('slow-init.mjs'), [name, '400']);
    cleanup.push(() => creator.kill());
    await creator.line('initialising');
    expect(shmObjects(name)).toEqual([]);
    const first = attachSegment(spec(name, { init: (mem: SharedMemory) => (new Uint8Array(mem.buffer)[300] = 9) }));
    cleanup.push(() => (first.mem.close(), SharedMemory.unlink(name, { kind: 'test' })));
    expect(first.created).toBe(true);
    expect(first.header.state).toBe('ready');
    // The other creator finishes its initialisation, finds the name taken, and joins ours instead.
    expect(await creator.line('ready')).toBe('ready false 9');
  });

  it('a 0-byte or header-less leftover at the name is removed and re-created at once, not waited on', () => {
    const name = uniqueName('empty');
    writeFileSync(`/dev/shm/libipc.test.${name}`, '');
    const t0 = performance.now();
    const a = attachSegment(spec(name));
    cleanup.push(() => (a.mem.close(), SharedMemory.unlink(name, { kind: 'test' })));
    expect(a.created).toBe(true);
    a.mem.close();
    SharedMemory.unlink(name, { kind: 'test' });
    writeFileSync(`/dev/shm/libipc.test.${name}`, Buffer.alloc(4096), { mode: 0o600 });
    const b = attachSegment(spec(name));
    cleanup.push(() => b.mem.close());
    expect(b.created).toBe(true);
    expect(b.header.state).toBe('ready');
    expect(performance.now() - t0).toBeLessThan(1500); // no 2 s wait for a creator that never existed
  });

  it('a creator killed while initialising leaves nothing that wedges: the opener re-creates', async () => {
    const name = uniqueName('dead');
    const creator: NodeChild = spawnNode(fixture('slow-init.mjs'), [name, 'forever']);
    await creator.line('initialising');
    await creator.kill('SIGKILL');
    const fresh = attachSegment(spec(name));
    cleanup.push(() => (fresh.mem.close(), SharedMemory.unlink(name, { kind: 'test' })));
    expect(fresh.created).toBe(true);
    expect(fresh.header.creator.pid).toBe(process.pid);
  });

  it('a retired segment is replaced by the next opener, never joined', () => {
    const name = uniqueName('ret');
    const old = attachSegment(spec(name));
    old.header.lock.lockSync(1000);
    old.header.retire();
    old.header.lock.unlock();
    expect(shmObjects(name)).toEqual([]);
    const next = attachSegment(spec(name));
    cleanup.push(() => (old.mem.close(), next.mem.close(), SharedMemory.unlink(name, { kind: 'test' })));
    expect(next.created).toBe(true);
    expect(old.header.state).toBe('retired');
    expect(next.header.state).toBe('ready');
  });
});

describe('IdentityTable', () => {
  it('records attached processes and reaps the dead ones', async () => {
    const mem = SharedMemory.create(uniqueName('ids'), 4096);
    cleanup.push(() => (mem.close(), SharedMemory.unlink(mem.name)));
    const table = new IdentityTable(mem, 128, 4);
    const mine = table.add(7);
    expect(table.tag(mine)).toBe(7);
    const f = await family('sleeper');
    const theirs = table.add(0, { pid: f.pid, startTime: (await import('../src/index.js')).processIdentity(f.pid)!.startTime });
    expect(table.used()).toEqual([mine, theirs]);
    expect(table.reap()).toEqual([]);
    await f.release();
    expect(table.reap()).toEqual([theirs]);
    expect(table.used()).toEqual([mine]);
    table.add();
    table.add();
    table.add();
    expect(table.add()).toBe(-1);
  });
});

describe('SegmentHeader', () => {
  it('reads a header through a second mapping', () => {
    const name = uniqueName('hdr2');
    const a = attachSegment(spec(name));
    const mem = SharedMemory.open(name, { kind: 'test' });
    cleanup.push(() => (a.mem.close(), mem.close(), SharedMemory.unlink(name, { kind: 'test' })));
    expect(new SegmentHeader(mem).state).toBe('ready');
  });
});
