// Death leases: the kernel breaks a lease when its holder thread dies, before the process is torn down.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { Lease, LEASE_SIZE, SharedMemory, watchExit } from '../src/index.js';
import { type NodeChild, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { fixture } from './fixtures.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function segment(): SharedMemory {
  const mem = SharedMemory.create(uniqueName('lease'), 4096);
  cleanup.push(() => (mem.close(), SharedMemory.unlink(mem.name)));
  return mem;
}
function start(script: string, args: string[]): NodeChild {
  const c = spawnNode(fixture(script), args);
  cleanup.push(() => c.kill());
  return c;
}

describe('Lease', () => {
  it('a holder SIGKILLed: every one of 3 watchers in 3 processes resolves owner-died', async () => {
    const mem = segment();
    const holder = start('lease-holder.mjs', [mem.name, '64']);
    await holder.line('held');
    expect(Lease.state(mem, 64)).toBe('held');
    expect(Lease.holder(mem, 64)).toEqual({ pid: holder.child.pid, tid: holder.child.pid });
    const watchers = [0, 1, 2].map(() => start('lease-watcher.mjs', [mem.name, '64']));
    await Promise.all(watchers.map((w) => w.line('watching')));
    const here = Lease.watch(mem, 64);
    await holder.kill('SIGKILL');
    expect(await here).toBe('owner-died');
    for (const w of watchers) expect(await w.line('outcome')).toBe('outcome owner-died');
    expect(Lease.state(mem, 64)).toBe('owner-died');
  });

  it('a holder killed while nobody watched: state() says owner-died, and watch resolves at once', async () => {
    const mem = segment();
    const holder = start('lease-holder.mjs', [mem.name, '0']);
    await holder.line('held');
    await holder.kill('SIGKILL');
    expect(Lease.state(mem, 0)).toBe('owner-died');
    expect(await Lease.watch(mem, 0)).toBe('owner-died');
    // Free to take again, by someone else.
    const mine = Lease.acquire(mem, 0);
    expect(Lease.state(mem, 0)).toBe('held');
    mine.release();
  });

  it('release(): watchers resolve released; a held lease cannot be taken by another', async () => {
    const mem = segment();
    const holder = start('lease-holder.mjs', [mem.name, '128', '0', 'release']);
    await holder.line('held');
    expect(() => Lease.acquire(mem, 128)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_ILLEGAL_STATE' }));
    const watching = Lease.watch(mem, 128);
    holder.child.kill('SIGUSR2');
    await holder.line('released');
    expect(await watching).toBe('released');
    expect(Lease.state(mem, 128)).toBe('released');
    await holder.exited;
  });

  it('a lease taken in a worker thread dies with that worker (its process lives on)', async () => {
    const mem = segment();
    const child = start('lease-worker.mjs', [mem.name]);
    expect(await child.line('worker holds')).toBe('worker holds: held');
    expect(await child.line('after terminate')).toBe('after terminate: owner-died');
    expect((await child.exited).code).toBe(0);
  });

  it('a holder that becomes a zombie nobody reaps is owner-died', async () => {
    const mem = segment();
    // A python parent that starts the holder and never reaps it: after SIGKILL it stays a zombie.
    const parent = spawn(
      'python3',
      ['-c', 'import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); sys.stdin.read(); p.wait()', process.execPath, fixture('lease-holder.mjs'), mem.name, '256'],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    cleanup.push(async () => {
      parent.stdin.end();
      await once(parent, 'exit');
    });
    const [line] = (await once(createInterface({ input: parent.stdout }), 'line')) as [string];
    const pid = Number(line.split(' ')[1]);
    const watching = Lease.watch(mem, 256);
    const exited = watchExit(pid);
    process.kill(pid, 'SIGKILL');
    expect(await watching).toBe('owner-died');
    // The lease breaks early in the exit; once the exit is complete it is a zombie (state Z) until its parent
    // reaps it, which this parent never does.
    await exited;
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
    expect(Lease.state(mem, 256)).toBe('owner-died');
  });

  it('refuses bad offsets and misuse with coded errors', () => {
    const mem = segment();
    expect(() => Lease.acquire(mem, 4)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => Lease.acquire(mem, 4096 - LEASE_SIZE + 8)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(Lease.state(mem, 512)).toBe('free');
    const l = Lease.acquire(mem, 512);
    expect(() => Lease.clear(mem, 512)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_ILLEGAL_STATE' }));
    l.release();
    l.release(); // idempotent
    expect(shmObjects(mem.name)).toHaveLength(1);
  });
});
