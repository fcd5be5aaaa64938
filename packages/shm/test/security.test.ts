// The threat model of docs/security.md: links planted at our names are never followed, another user's segments
// are never joined unless allowed, a full /dev/shm is an error at creation (never a SIGBUS later).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attachSegment, SharedMemory } from '../src/index.js';
import { canMountTmpfs, canSwitchUsers, type NodeChild, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { fixture } from './fixtures.js';

const NOBODY = 65534;
const spec = (name: string, extra: object = {}) => ({ kind: 'test', name, layoutVersion: 1, size: 4096, ...extra });
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function victimFile(name: string): string {
  const path = join(tmpdir(), `${name}-victim`);
  writeFileSync(path, 'untouched', { mode: 0o644 });
  cleanup.push(() => rmSync(path, { force: true }));
  return path;
}

async function squat(kind: string, name: string, how: string): Promise<NodeChild> {
  const child = spawnNode(fixture('squatter.mjs'), [kind, name, how], {}, [], { asUid: NOBODY });
  cleanup.push(async () => {
    child.child.kill('SIGKILL');
    await child.exited;
    rmSync(`/dev/shm/libipc.${kind}.${name}`, { force: true });
  });
  expect(await child.line('ready')).toBe(`ready ${NOBODY}`);
  return child;
}

describe('links and strangers', () => {
  it('a symlink planted at a segment name is refused (ERR_LIBIPC_PERMISSION), its target untouched', () => {
    const name = uniqueName('link');
    const victim = victimFile(name);
    symlinkSync(victim, `/dev/shm/libipc.test.${name}`);
    cleanup.push(() => rmSync(`/dev/shm/libipc.test.${name}`, { force: true }));
    expect(() => SharedMemory.open(name, { kind: 'test' })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_PERMISSION', message: expect.stringContaining('symbolic link') }));
    expect(() => attachSegment(spec(name))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_PERMISSION' }));
    expect(readFileSync(victim, 'utf8')).toBe('untouched');
  });

  it('a FIFO or a directory at a segment name is refused as not a segment, without blocking', () => {
    const name = uniqueName('fifo');
    const path = `/dev/shm/libipc.test.${name}`;
    execMkfifo(path);
    cleanup.push(() => rmSync(path, { force: true }));
    expect(() => SharedMemory.open(name, { kind: 'test' })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
  });

  it.skipIf(!canSwitchUsers)('another user’s symlink at a name is never followed by root', async () => {
    const name = uniqueName('ulink');
    const victim = victimFile(name);
    await squat('test', name, `symlink:${victim}`);
    expect(() => attachSegment(spec(name))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_PERMISSION' }));
    expect(readFileSync(victim, 'utf8')).toBe('untouched');
  });

  it.skipIf(!canSwitchUsers)('a segment created by another user is refused unless its uid is allowed', async () => {
    const name = uniqueName('squat');
    const raw = uniqueName('squatraw');
    await squat('test', name, 'segment');
    await squat('test', raw, 'raw');
    expect(() => attachSegment(spec(name))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_PERMISSION', message: expect.stringContaining(`uid ${NOBODY}`) }));
    expect(() => SharedMemory.open(raw, { kind: 'test' })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_PERMISSION' }));
    const joined = attachSegment(spec(name, { allowUsers: [NOBODY] }));
    cleanup.push(() => joined.mem.close());
    expect(joined.created).toBe(false);
    expect(joined.header.creator.uid).toBe(NOBODY);
    const opened = SharedMemory.open(raw, { kind: 'test', allowUsers: [NOBODY] });
    cleanup.push(() => opened.close());
    expect(opened.ownerUid).toBe(NOBODY);
  });

  it('a header that claims another creator uid than the object’s owner is refused', () => {
    const name = uniqueName('forged');
    const a = attachSegment(spec(name));
    cleanup.push(() => (a.mem.close(), SharedMemory.unlink(name, { kind: 'test' })));
    new DataView(a.mem.buffer).setUint32(28, NOBODY, true); // creator uid in the header
    expect(() => attachSegment(spec(name))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_PERMISSION' }));
  });
});

describe('resources', () => {
  it.skipIf(!canMountTmpfs)('a full /dev/shm (a private 4 MiB tmpfs) fails creation with ERR_LIBIPC_NO_SPACE; created segments never fault', async () => {
    const child = spawnNode(fixture('full-tmpfs.mjs'), [], {}, [], { smallTmpfs: { size: '4m', inodes: 1000 } });
    const report = JSON.parse(await child.line('{'));
    expect(report.code).toBe('ERR_LIBIPC_NO_SPACE');
    expect(report.created).toBeGreaterThan(0);
    expect(report.created).toBe(report.left);
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  it('segments are created with mode 0600 whatever the umask, and another mode only when asked', () => {
    const name = uniqueName('mode');
    const old = process.umask(0);
    try {
      const a = SharedMemory.create(name, 64);
      cleanup.push(() => (a.close(), SharedMemory.unlink(name)));
      expect(a.handle.mode).toBe(0o600);
    } finally {
      process.umask(old);
    }
    expect(shmObjects(name)).toHaveLength(1);
  });
});

function execMkfifo(path: string): void {
  execFileSync('mkfifo', ['-m', '600', path]); // node has no mkfifo
}
