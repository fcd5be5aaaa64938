import { Builder, ByteBuffer } from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { decodeAudioBuffer, encodeAudioBuffer, FLAG_RESENT, HEADER_BYTES } from '../src/audio-buffer.js';
import { applyGainPan, channelGains, panGains, sweepBuffer } from '../src/dsp.js';
import { AudioBufferHeader } from '../src/generated/audio/audio-buffer-header.js';
import { type Control, decodeControl, encodeControl, encodeReply, ParamType, readReply, ReplyMsgRoot, Status } from '../src/protocol.js';
import { percentile } from '../src/stats.js';
import { formatTable } from '../src/table.js';

describe('protocol', () => {
  it('every control message survives encode → decode', () => {
    const msgs: Control[] = [
      { seq: 1n, type: 'start', sampleRate: 96_000, channels: 1, bufferFrames: 128 },
      { seq: 2n, type: 'stop' },
      { seq: 3n, type: 'set', param: ParamType.FilterResonance, value: 0.5 },
      { seq: 2n ** 64n - 1n, type: 'get', param: ParamType.Pan },
    ];
    for (const msg of msgs) expect(decodeControl(encodeControl(msg))).toEqual(msg);
  });

  it('replies carry the file identifier and read back', () => {
    const ack = encodeReply({ seq: 9n, type: 'ack', refSeq: 4n, status: Status.NotRunning });
    expect(Buffer.from(ack.subarray(4, 8)).toString()).toBe('AUDP');
    expect(readReply(ReplyMsgRoot.getRootAsReplyMsgRoot(new ByteBuffer(ack)))).toEqual({ seq: 9n, type: 'ack', refSeq: 4n, status: Status.NotRunning });
    const value = encodeReply({ seq: 10n, type: 'param', refSeq: 5n, param: ParamType.Gain, value: 0.75 });
    expect(ReplyMsgRoot.bufferHasIdentifier(new ByteBuffer(value))).toBe(true);
    expect(readReply(ReplyMsgRoot.getRootAsReplyMsgRoot(new ByteBuffer(value)))).toMatchObject({ refSeq: 5n, value: 0.75 });
  });
});

describe('audio buffers', () => {
  it('the header is laid out as the schema struct that flatc writes', () => {
    const b = new Builder(64);
    AudioBufferHeader.createAudioBufferHeader(b, 0x0102030405060708n, -5n, 512, 2, FLAG_RESENT);
    const theirs = b.dataBuffer().bytes().subarray(b.dataBuffer().capacity() - b.offset());
    const ours = encodeAudioBuffer({ sequence: 0x0102030405060708n, timestampUs: -5n, frames: 512, channels: 2, flags: FLAG_RESENT, samples: new Float32Array(1024) });
    expect(HEADER_BYTES).toBe(24);
    expect([...ours.subarray(0, HEADER_BYTES)]).toEqual([...theirs]);
  });

  it('round-trips and refuses a size that does not match the header', () => {
    const samples = sweepBuffer(3, { sampleRate: 48_000, channels: 2, frames: 64, buffers: 10 });
    const bytes = encodeAudioBuffer({ sequence: 3n, timestampUs: 123n, frames: 64, channels: 2, flags: 0, samples });
    const back = decodeAudioBuffer(bytes);
    expect(back).toMatchObject({ sequence: 3n, timestampUs: 123n, frames: 64, channels: 2, flags: 0 });
    expect(back.samples).toEqual(samples);
    // From an odd offset (a pooled receive view need not be aligned).
    const shifted = new Uint8Array(bytes.length + 1).fill(0xee);
    shifted.set(bytes, 1);
    expect(decodeAudioBuffer(shifted.subarray(1)).samples).toEqual(samples);
    expect(() => decodeAudioBuffer(bytes.subarray(0, 10))).toThrow(/shorter than its 24-byte header/);
    expect(() => decodeAudioBuffer(bytes.subarray(0, bytes.length - 4))).toThrow(/64 frames × 2 channels need/);
    const noChannels = bytes.slice();
    new DataView(noChannels.buffer).setUint16(20, 0, true);
    expect(() => decodeAudioBuffer(noChannels)).toThrow(/claims 0 channels/);
  });
});

describe('dsp', () => {
  it('pan law: unity at the centre, the far channel fades linearly', () => {
    expect(panGains(0)).toEqual([1, 1]);
    expect(panGains(1)).toEqual([0, 1]);
    expect(panGains(-1)).toEqual([1, 0]);
    expect(panGains(0.5)).toEqual([0.5, 1]);
    expect([...channelGains(0.5, -0.5, 3)]).toEqual([0.5, 0.25, 0.5]);
    expect([...channelGains(2, 1, 1)]).toEqual([2]); // mono: no pan
  });

  it('applies gain and pan per interleaved channel', () => {
    const out = applyGainPan(Float32Array.of(1, 1, -0.5, 0.5), 2, 0.75, 0.5);
    expect([...out]).toEqual([0.375, 0.75, -0.1875, 0.375]);
  });

  it('the sweep is a function of the buffer index only', () => {
    const spec = { sampleRate: 48_000, channels: 2, frames: 512, buffers: 100 };
    expect(sweepBuffer(17, spec)).toEqual(sweepBuffer(17, spec));
    expect(sweepBuffer(17, spec)).not.toEqual(sweepBuffer(18, spec));
    const peak = Math.max(...sweepBuffer(5, spec).map(Math.abs));
    expect(peak).toBeGreaterThan(0.4);
    expect(peak).toBeLessThanOrEqual(0.5);
  });
});

describe('report helpers', () => {
  it('percentile by nearest rank', () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
    expect(percentile([], 50)).toBeNaN();
  });

  it('the instance table aligns its columns', () => {
    const lines = formatTable([
      { name: 'audio_compute.0', role: 'primary', pid: 123, epoch: 1, engine: 'c++' },
      { name: 'audio_compute.1', role: 'standby', pid: 45678, epoch: 0, engine: 'node' },
    ]);
    expect(lines).toEqual([
      '  INSTANCE         ROLE     PID    PRIMARY IN EPOCH  ENGINE',
      '  audio_compute.0  primary  123    1                 c++',
      '  audio_compute.1  standby  45678  -                 node',
    ]);
  });
});
