// Regression tests for the channel core's failure modes: a corrupt shared header, workers torn down while they
// hold the send lock or the last handle, receivers joining a busy channel, links planted at doorbells.
import { lstatSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { Channel } from '../src/index.js';

const fixture = (f: string) => new URL(`./fixtures/${f}`, import.meta.url).pathname;

describe('channel core hardening', () => {
  it('a second mapping writing garbage into the live header and ring never crashes the reader or writer', async () => {
    const name = uniqueName('corrupt');
    const child = spawnNode(fixture('corrupt.mjs'), [name, '20000']);
    const report = JSON.parse(await child.line('{', 60_000));
    expect(report.uncoded).toEqual([]);
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(shmObjects(name)).toEqual([]);
  });

  it('a worker terminated while holding the send lock does not wedge the channel; a terminated last handle leaves no segment', async () => {
    const name = uniqueName('wsl');
    const child = spawnNode(fixture('worker-send-lock.mjs'), [name]);
    expect(await child.line('after terminate', 30_000)).toMatch(/^after terminate sent=true got=after in \d+ ms$/);
    await child.line('done');
    expect((await child.exited).code).toBe(0);
    expect(shmObjects(name)).toEqual([]);
  });

  it("receivers joining a flooded 'wait'-mode channel never get ERR_LIBIPC_LAGGED", async () => {
    const name = uniqueName('churn');
    const tx = new Channel(name, { capacity: 16, slotSize: 128 });
    let stop = false;
    const flood = (async () => {
      for (let i = 0; !stop; i++) if (!tx.trySend(`m${i}`)) await new Promise((r) => setImmediate(r));
    })();
    try {
      const child = spawnNode(fixture('join-churn.mjs'), [name, '100']);
      const report = JSON.parse(await child.line('{', 60_000));
      await child.exited;
      expect(report.lagged).toBe(0);
      expect(report.received).toBeGreaterThan(0);
    } finally {
      stop = true;
      await flood;
      tx.close();
    }
    expect(shmObjects(name)).toEqual([]);
  });

  it('a sender never writes through a link or into a regular file planted at a receiver’s doorbell', async () => {
    const name = uniqueName('bell');
    const victim = join(tmpdir(), `${name}-victim`);
    writeFileSync(victim, 'untouched');
    const rx = new Channel(name, { mode: 'receiver' });
    const tx = new Channel(name);
    try {
      const bell = shmObjects(`chanbell.${name}.`).map((f) => `/dev/shm/${f}`)[0]!;
      expect(lstatSync(bell).isFIFO()).toBe(true);
      // Swap the live doorbell for a symlink to the victim, then for a regular file.
      for (const plant of [() => symlinkSync(victim, bell), () => writeFileSync(bell, '')]) {
        unlinkSync(bell);
        plant();
        const pending = rx.recv({ timeoutMs: 3000 }); // asleep on its (now unreachable) bell: falls back to its re-check
        await new Promise((r) => setTimeout(r, 20));
        expect(await tx.send('hello', { timeoutMs: 3000 })).toBe(true);
        expect(Buffer.from((await pending)!).toString()).toBe('hello');
        expect(readFileSync(victim, 'utf8')).toBe('untouched');
        if (lstatSync(bell).isFile()) expect(readFileSync(bell, 'utf8')).toBe('');
      }
    } finally {
      tx.close();
      rx.close();
      rmSync(victim, { force: true });
      Channel.clearStorage(name);
    }
    expect(shmObjects(name)).toEqual([]);
  });
});
