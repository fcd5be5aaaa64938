import { afterAll, describe, expect, it } from 'vitest';
import { RobustMutex, SharedMemory, validateName, wait, waitSync, wake } from '../src/index.js';
import { uniqueName } from '../../../test/helpers.js';

const code = (c: string) => expect.objectContaining({ code: c, message: expect.any(String) });
const name = uniqueName('bad');
const mem = SharedMemory.create(name, 4096);
afterAll(() => {
  mem.close();
  SharedMemory.unlink(name);
});

describe('bad input gets the error of the table, never a crash', () => {
  it.each([[''], ['a'.repeat(64)], ['has/slash'], ['spa ce'], ['ünï'], ['..\u0000']])('name %j → ERR_LIBIPC_INVALID_NAME', (bad) => {
    expect(() => validateName(bad)).toThrow(code('ERR_LIBIPC_INVALID_NAME'));
    expect(() => SharedMemory.create(bad, 64)).toThrow(code('ERR_LIBIPC_INVALID_NAME'));
    expect(() => SharedMemory.open(bad)).toThrow(code('ERR_LIBIPC_INVALID_NAME'));
  });

  it('accepts exactly 63 bytes of the allowed characters', () => {
    expect(() => validateName('A-z_0.9'.padEnd(63, 'x'))).not.toThrow();
    expect(() => validateName(42 as unknown as string)).toThrow(code('ERR_LIBIPC_INVALID_NAME'));
  });

  it.each([[0], [-1], [1.5], [NaN], [2 ** 60], ['12' as unknown as number]])('size %j → ERR_LIBIPC_INVALID_ARGUMENT', (size) => {
    expect(() => SharedMemory.create(uniqueName('sz'), size)).toThrow(code('ERR_LIBIPC_INVALID_ARGUMENT'));
  });

  it('names the /dev/shm limit for an absurd size', () => {
    expect(() => SharedMemory.create(uniqueName('sz'), 2 ** 50)).toThrow(/larger than \/dev\/shm can hold/);
  });

  it.each([[-4], [4096], [4094], [2], [1.5], [NaN]])('offset %j → ERR_LIBIPC_INVALID_ARGUMENT', async (offset) => {
    expect(() => wake(mem, offset)).toThrow(code('ERR_LIBIPC_INVALID_ARGUMENT'));
    expect(() => waitSync(mem, offset, 0, 1)).toThrow(code('ERR_LIBIPC_INVALID_ARGUMENT'));
    await expect(wait(mem, offset, 0, 1)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
  });

  it('mutex offsets must be 8-byte aligned and inside the segment', () => {
    expect(() => new RobustMutex(mem, 4)).toThrow(code('ERR_LIBIPC_INVALID_ARGUMENT'));
    expect(() => new RobustMutex(mem, 4088)).not.toThrow();
    expect(() => new RobustMutex(mem, 4096)).toThrow(code('ERR_LIBIPC_INVALID_ARGUMENT'));
  });

  it('timeouts must be numbers >= 0; synchronous waits must be bounded', async () => {
    await expect(wait(mem, 0, 0, -1)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    await expect(wait(mem, 0, 0, NaN)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    expect(() => waitSync(mem, 0, 0, Infinity)).toThrow(code('ERR_LIBIPC_INVALID_ARGUMENT'));
    expect(() => new RobustMutex(mem, 0).lockSync(Infinity)).toThrow(code('ERR_LIBIPC_INVALID_ARGUMENT'));
    await expect(wait(mem, 0, 2 ** 33, 1)).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
  });

  it('open of an absent name → NOT_FOUND; create of an existing one → EXISTS', () => {
    expect(() => SharedMemory.open(uniqueName('absent'))).toThrow(code('ERR_LIBIPC_NOT_FOUND'));
    expect(() => SharedMemory.create(name, 64)).toThrow(code('ERR_LIBIPC_EXISTS'));
  });

  it('mode and kind are checked', () => {
    expect(() => SharedMemory.create(uniqueName('m'), 64, { mode: 0o1000 })).toThrow(code('ERR_LIBIPC_INVALID_ARGUMENT'));
    expect(() => SharedMemory.create(uniqueName('m'), 64, { kind: 'Bad/Kind' })).toThrow(code('ERR_LIBIPC_INVALID_NAME'));
  });

  it('use after close → ERR_LIBIPC_CLOSED', async () => {
    const m = SharedMemory.create(uniqueName('closed'), 4096);
    const mutex = RobustMutex.init(m, 0);
    m.close();
    SharedMemory.unlink(m.name);
    expect(() => wake(m, 0)).toThrow(code('ERR_LIBIPC_CLOSED'));
    expect(() => mutex.tryLock()).toThrow(code('ERR_LIBIPC_CLOSED'));
    await expect(wait(m, 0, 0, 1)).rejects.toMatchObject({ code: 'ERR_LIBIPC_CLOSED' });
  });
});
