// The FlatBuffers-typed layer: build, send, receive, and refuse malformed buffers without breaking the channel.
import { Builder } from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { closeAfterEach, uniqueName } from '../../../test/helpers.js';
import { Channel, TypedChannel, TypedRoute } from '../src/index.js';
import { Sample } from './generated/sample_generated.js';

const track = closeAfterEach();

function sample(b: Builder, id: number, name: string): number {
  const n = b.createString(name);
  const p = Sample.createPayloadVector(b, [1, 2, 3]);
  return Sample.createSample(b, id, n, p);
}

describe('TypedChannel', () => {
  it('sends a built table and receives it typed; reads the identifier from the generated class', async () => {
    const name = uniqueName('typed');
    const rx = track(new TypedChannel(name, Sample, { mode: 'receiver' }));
    const tx = track(new TypedChannel(name, Sample));
    expect(rx.identifier).toBe('LSMP');
    expect(await tx.send((b) => sample(b, 7, 'seven'))).toBe(true);
    const b = new Builder(64);
    b.finish(sample(b, 8, 'eight'), 'LSMP');
    expect(await tx.send(b.asUint8Array())).toBe(true);
    const m1 = await rx.recv();
    expect([m1?.id(), m1?.name(), Array.from(m1?.payloadArray() ?? [])]).toEqual([7, 'seven', [1, 2, 3]]);
    const m2 = await rx.recv();
    expect([m2?.id(), m2?.name()]).toEqual([8, 'eight']);
    expect(await rx.recv({ timeoutMs: 20 })).toBeUndefined();
  });

  it('turns short, malformed and foreign buffers into ERR_LIBIPC_BAD_MESSAGE; the next good message arrives', async () => {
    const name = uniqueName('typed');
    const rx = track(new TypedChannel(name, Sample, { mode: 'receiver' }));
    const raw = track(new Channel(name));
    const good = new Builder(64);
    good.finish(sample(good, 1, 'good'), 'LSMP');
    const goodBytes = good.asUint8Array();
    const foreign = new Builder(64);
    foreign.finish(sample(foreign, 2, 'foreign'), 'XXXX');
    const badRoot = Buffer.from(goodBytes);
    badRoot.writeUInt32LE(0xfffff0, 0);
    const badVtable = Buffer.from(goodBytes);
    const root = badVtable.readUInt32LE(0);
    badVtable.writeInt32LE(-100000, root);
    const noIdentifier = new Builder(64);
    noIdentifier.finish(sample(noIdentifier, 3, 'none'));
    const bad = [new Uint8Array(0), Buffer.from('abc'), foreign.asUint8Array(), badRoot, badVtable, noIdentifier.asUint8Array()];
    for (const bytes of bad) {
      expect(await raw.send(bytes)).toBe(true);
      expect(await raw.send(goodBytes)).toBe(true);
      await expect(rx.recv()).rejects.toMatchObject({ code: 'ERR_LIBIPC_BAD_MESSAGE' });
      expect((await rx.recv())?.name()).toBe('good');
    }
  });

  it('built messages that wait for room keep their own bytes (the builder is reused)', async () => {
    const name = uniqueName('typed');
    const rx = track(new TypedChannel(name, Sample, { mode: 'receiver', capacity: 2 }));
    const tx = track(new TypedChannel(name, Sample));
    const sends = Array.from({ length: 6 }, (_, i) => tx.send((b) => sample(b, i, `n${i}`)));
    const got: Array<[number, string | null]> = [];
    for (let i = 0; i < 6; i++) {
      const m = await rx.recv({ timeoutMs: 10_000 });
      got.push([m!.id(), m!.name()]);
    }
    expect(await Promise.all(sends)).toEqual(Array(6).fill(true));
    expect(got).toEqual(Array.from({ length: 6 }, (_, i) => [i, `n${i}`]));
  });

  it('runs the verify hook before handing a message over', async () => {
    const name = uniqueName('typed');
    const rx = track(new TypedChannel(name, Sample, { mode: 'receiver', verify: (m) => m.name() !== null && m.id() < 100 }));
    const tx = track(new TypedChannel(name, Sample));
    await tx.send((b) => sample(b, 500, 'too big'));
    await tx.send((b) => sample(b, 5, 'fine'));
    await expect(rx.recv()).rejects.toMatchObject({ code: 'ERR_LIBIPC_BAD_MESSAGE' });
    expect((await rx.recv())?.id()).toBe(5);
  });

  it('iterates messages and works over a Route', async () => {
    const name = uniqueName('typedr');
    const rx = track(new TypedRoute(name, Sample, { mode: 'receiver' }));
    const tx = track(new TypedRoute(name, Sample));
    for (let i = 0; i < 3; i++) await tx.send((b) => sample(b, i, `n${i}`));
    const ids: number[] = [];
    for await (const m of rx) {
      ids.push(m.id());
      if (ids.length === 3) rx.close();
    }
    expect(ids).toEqual([0, 1, 2]);
  });

  it('refuses a class that is not flatc output, and a build function that returns no offset', async () => {
    const name = uniqueName('typed');
    expect(() => new TypedChannel(name, class {} as never)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    const tx = track(new TypedChannel(name, Sample));
    track(new Channel(name, { mode: 'receiver' }));
    expect(() => tx.send(() => 0)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => tx.send(42 as never)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
  });
});
