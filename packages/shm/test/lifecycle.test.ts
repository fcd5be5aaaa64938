import { describe, expect, it } from 'vitest';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { fixture } from './fixtures.js';

describe('native lifetime', () => {
  it('garbage collection unmaps segments that were never closed, without a crash', async () => {
    const name = uniqueName('gc');
    const child = spawnNode(fixture('gc.mjs'), [name], {}, ['--expose-gc']);
    const line = await child.line('{');
    const { before, after } = JSON.parse(line) as { before: number; after: number };
    expect(before).toBeGreaterThanOrEqual(21);
    expect(after).toBe(0);
    expect((await child.exited).code).toBe(0);
    expect(shmObjects(name)).toEqual([]);
  });

  it('loads in worker_threads; a worker terminated during a wait exits cleanly', async () => {
    const name = uniqueName('wrk');
    const child = spawnNode(fixture('worker.mjs'), [name]);
    expect(await child.line('woke')).toMatch(/^woke (ok|not-equal)$/);
    await child.line('terminated');
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(shmObjects(name)).toEqual([]);
  });

  it('on an unsupported platform, loading fails with ERR_LIBIPC_UNSUPPORTED_PLATFORM naming the platform', async () => {
    const child = spawnNode(fixture('other-platform.mjs'));
    expect(await child.line('ERR_')).toMatch(/^ERR_LIBIPC_UNSUPPORTED_PLATFORM .*darwin-/);
    await child.exited;
  });
});
