import { afterEach, describe, expect, it } from 'vitest';
import { RobustMutex, SharedMemory } from '../src/index.js';
import { type NodeChild, spawnNode, uniqueName } from '../../../test/helpers.js';
import { fixture } from './fixtures.js';

let mem: SharedMemory | undefined;
let holder: NodeChild | undefined;
afterEach(async () => {
  if (holder) {
    holder.child.kill('SIGCONT');
    await holder.kill('SIGKILL');
    holder = undefined;
  }
  if (mem) {
    mem.close();
    SharedMemory.unlink(mem.name);
    mem = undefined;
  }
});

async function heldBy(offset = 64) {
  mem = SharedMemory.create(uniqueName('mutex'), 4096);
  const mutex = RobustMutex.init(mem, offset);
  holder = spawnNode(fixture('mutex-holder.mjs'), [mem.name, String(offset)]);
  await holder.line('locked');
  return mutex;
}

describe('RobustMutex', () => {
  it('excludes within and across processes, and only the owner unlocks', async () => {
    const mutex = await heldBy();
    expect(mutex.tryLock()).toEqual({ acquired: false, ownerDied: false });
    expect(mutex.ownerPid).toBe(holder!.child.pid);
    expect(() => mutex.unlock()).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_ILLEGAL_STATE' }));
  });

  it('a holder SIGKILLed while holding: the next lock gets ownerDied and the mutex works afterwards', async () => {
    const mutex = await heldBy();
    const locking = mutex.lock(30_000);
    await holder!.kill('SIGKILL');
    holder = undefined;
    expect(await locking).toEqual({ ownerDied: true });
    mutex.unlock();
    expect(mutex.tryLock()).toEqual({ acquired: true, ownerDied: false });
    mutex.unlock();
    expect(mutex.lockSync(1000)).toEqual({ ownerDied: false });
    mutex.unlock();
  });

  it('lockSync also takes over from a dead holder', async () => {
    const mutex = await heldBy(128);
    await holder!.kill('SIGKILL');
    holder = undefined;
    expect(mutex.lockSync(5_000)).toEqual({ ownerDied: true });
    mutex.unlock();
  });

  it('a SIGSTOPped holder: lockSync fails with ERR_LIBIPC_TIMEOUT at its bound; lock() keeps the event loop running', async () => {
    const mutex = await heldBy();
    holder!.child.kill('SIGSTOP');
    const t0 = performance.now();
    expect(() => mutex.lockSync(200)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_TIMEOUT' }));
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(190);
    expect(waited).toBeLessThan(5_000);

    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const locking = mutex.lock(30_000);
    await new Promise((r) => setTimeout(r, 150));
    expect(ticks).toBeGreaterThan(3);
    clearInterval(ticker);
    // The stopped holder is still alive: lock() is still waiting. Now it dies.
    holder!.child.kill('SIGKILL');
    await holder!.exited;
    holder = undefined;
    expect(await locking).toEqual({ ownerDied: true });
    mutex.unlock();
  });

  it('lock() rejects with ERR_LIBIPC_TIMEOUT when a live holder keeps it', async () => {
    const mutex = await heldBy();
    await expect(mutex.lock(100)).rejects.toMatchObject({ code: 'ERR_LIBIPC_TIMEOUT' });
  });

  it('an unlock wakes a waiter in another process at once', async () => {
    mem = SharedMemory.create(uniqueName('mutex'), 4096);
    const mutex = RobustMutex.init(mem, 0);
    mutex.lockSync(1000);
    holder = spawnNode(fixture('mutex-holder.mjs'), [mem.name, '0']);
    // The child blocks in lockSync (5 s bound) until we unlock.
    await new Promise((r) => setTimeout(r, 50));
    mutex.unlock();
    await holder.line('locked', 4_000);
  });
});
