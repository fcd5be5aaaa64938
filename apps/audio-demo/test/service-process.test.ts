// The real audio-service executable, run by hand (the seed's manual mode), fed good and bad input.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '@libipc/registry';
import { Channel, TypedChannel } from '@libipc/typed-channel';
import { decodeAudioBuffer, encodeAudioBuffer } from '../src/audio-buffer.js';
import { sweepBuffer } from '../src/dsp.js';
import { channelNames } from '../src/names.js';
import { type Control, encodeControl, ParamType, readReply, type Reply, type ReplyMsg, ReplyMsgRoot, Status } from '../src/protocol.js';
import { liveChildren, type NodeChild, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';

const service = fileURLToPath(new URL('../dist/audio-service.js', import.meta.url));
const cleanup: Array<() => unknown> = [];

beforeAll(() => {
  if (!existsSync(service)) throw new Error(`${service} is missing: pnpm turbo run build --filter @libipc/audio-demo...`);
});

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  expect(liveChildren()).toEqual([]);
});

/** Starts `audio-service 0` by hand in a fresh domain and connects to its four channels as a host would. */
async function startService() {
  const domain = uniqueName('aud');
  const child: NodeChild = spawnNode(service, ['0'], { LIBIPC_DOMAIN: domain });
  cleanup.push(() => child.kill('SIGKILL'));
  const registry = new ServiceRegistry(domain);
  cleanup.push(() => registry.close());
  const entry = await registry.waitFor('audio_compute.0', { timeoutMs: 20_000 });
  expect(entry?.pid).toBe(child.child.pid);
  const names = channelNames(domain, 0);
  const control = new Channel(names.control);
  const reply = new TypedChannel<ReplyMsg>(names.reply, ReplyMsgRoot, { mode: 'receiver' });
  const dataIn = new Channel(names.dataIn);
  const dataOut = new Channel(names.dataOut, { mode: 'receiver' });
  cleanup.push(() => [control, reply, dataIn, dataOut].forEach((c) => c.close()));
  expect(await control.waitForRecv(1, { timeoutMs: 10_000 })).toBe(true);
  expect(await dataIn.waitForRecv(1, { timeoutMs: 10_000 })).toBe(true);
  const ask = async (msg: Control | Uint8Array): Promise<Reply> => {
    expect(await control.send(msg instanceof Uint8Array ? msg : encodeControl(msg), { timeoutMs: 5000 })).toBe(true);
    const r = await reply.recv({ timeoutMs: 10_000 });
    if (!r) throw new Error('no reply within 10 s');
    return readReply(r);
  };
  return { domain, child, registry, control, reply, dataIn, dataOut, ask };
}

describe('audio-service run by hand', () => {
  it('answers commands, processes audio with gain and pan, and exits 0 on SIGTERM leaving nothing', async () => {
    const s = await startService();
    expect(await s.ask({ seq: 1n, type: 'get', param: ParamType.Gain })).toMatchObject({ type: 'param', refSeq: 1n, value: 1 });
    expect(await s.ask({ seq: 2n, type: 'stop' })).toMatchObject({ refSeq: 2n, status: Status.NotRunning });
    expect(await s.ask({ seq: 3n, type: 'set', param: ParamType.Gain, value: 0.5 })).toMatchObject({ refSeq: 3n, status: Status.Ok });
    expect(await s.ask({ seq: 4n, type: 'set', param: ParamType.Pan, value: 0.5 })).toMatchObject({ refSeq: 4n, status: Status.Ok });
    expect(await s.ask({ seq: 5n, type: 'set', param: 12, value: 1 })).toMatchObject({ refSeq: 5n, status: Status.InvalidParam });
    expect(await s.ask({ seq: 6n, type: 'start', sampleRate: 48_000, channels: 2, bufferFrames: 64 })).toMatchObject({ status: Status.Ok });

    const samples = sweepBuffer(0, { sampleRate: 48_000, channels: 2, frames: 64, buffers: 1 });
    await s.dataIn.send(encodeAudioBuffer({ sequence: 77n, timestampUs: 1n, frames: 64, channels: 2, flags: 0, samples }), { timeoutMs: 5000 });
    const back = await s.dataOut.recv({ timeoutMs: 10_000 });
    expect(back).toBeDefined();
    const out = decodeAudioBuffer(back!);
    expect(out.sequence).toBe(77n);
    // pan 0.5: left × (1 − 0.5), right × 1; then gain 0.5.
    for (let i = 0; i < samples.length; i++) expect(out.samples[i]).toBeCloseTo(samples[i]! * 0.5 * (i % 2 === 0 ? 0.5 : 1), 6);

    s.child.child.kill('SIGTERM');
    expect(await s.child.exited).toEqual({ code: 0, signal: null });
    expect(s.registry.find('audio_compute.0')).toBeUndefined();
    for (const f of cleanup.splice(0).reverse()) await f();
    expect(shmObjects(s.domain)).toEqual([]);
  });

  it('survives malformed control messages: Error when the seq is readable, ignored otherwise', async () => {
    const s = await startService();
    const good = encodeControl({ seq: 10n, type: 'set', param: ParamType.Gain, value: 0.25 }).slice();

    const wrongId = good.slice();
    wrongId.set(Buffer.from('XXXX'), 4);
    const badRoot = good.slice();
    new DataView(badRoot.buffer).setUint32(0, 0x7ffffff0, true);
    const badPayload = good.slice();
    const view = new DataView(badPayload.buffer);
    const rootPos = view.getUint32(0, true);
    const vtable = rootPos - view.getInt32(rootPos, true);
    view.setUint32(rootPos + view.getUint16(vtable + 8, true), 0x10000, true);

    // Ignored (no reply): empty, truncated, foreign, a corrupt root. Sent back to back, then a good one.
    for (const bytes of [new Uint8Array(0), good.subarray(0, 7), wrongId, badRoot, Buffer.from('not a flatbuffer at all')]) {
      expect(await s.control.send(bytes, { timeoutMs: 5000 })).toBe(true);
    }
    // Answered Error: the envelope is fine, its payload offset is not.
    expect(await s.ask(badPayload)).toEqual({ seq: expect.any(BigInt), type: 'ack', refSeq: 10n, status: Status.Error });
    // Still alive, state untouched by any of them, and answering in order.
    expect(await s.ask({ seq: 11n, type: 'get', param: ParamType.Gain })).toMatchObject({ type: 'param', refSeq: 11n, value: 1 });

    // Bad audio is dropped with a log line; good audio still flows.
    expect(await s.ask({ seq: 12n, type: 'start', sampleRate: 48_000, channels: 2, bufferFrames: 16 })).toMatchObject({ status: Status.Ok });
    await s.dataIn.send(new Uint8Array(5), { timeoutMs: 5000 });
    await s.dataIn.send(new Uint8Array(200).fill(0xff), { timeoutMs: 5000 });
    const samples = new Float32Array(32).fill(0.5);
    await s.dataIn.send(encodeAudioBuffer({ sequence: 1n, timestampUs: 0n, frames: 16, channels: 2, flags: 0, samples }), { timeoutMs: 5000 });
    const back = await s.dataOut.recv({ timeoutMs: 10_000 });
    expect(decodeAudioBuffer(back!).sequence).toBe(1n);

    expect(s.child.child.exitCode).toBeNull();
    s.child.child.kill('SIGTERM');
    expect((await s.child.exited).code).toBe(0);
  });
});
