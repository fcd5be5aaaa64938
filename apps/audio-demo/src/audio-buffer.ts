// One audio buffer on the data channels: an AudioBufferHeader (the schema's struct, 24 bytes, little
// endian) followed by frames × channels interleaved float32 samples.
import { BadMessageError } from '@libipc/shm';
import { ByteBuffer } from 'flatbuffers';
import { AudioBufferHeader } from './generated/audio/audio-buffer-header.js';

export const HEADER_BYTES = AudioBufferHeader.sizeOf();
/** flags bit 0: the host sent this buffer again after a failover. */
export const FLAG_RESENT = 1;
const MAX_CHANNELS = 64;

export interface AudioBuffer {
  sequence: bigint;
  timestampUs: bigint;
  frames: number;
  channels: number;
  flags: number;
  samples: Float32Array;
}

export function encodeAudioBuffer(buf: AudioBuffer): Uint8Array {
  if (buf.samples.length !== buf.frames * buf.channels) {
    throw new RangeError(`${buf.samples.length} samples is not ${buf.frames} frames × ${buf.channels} channels`);
  }
  const out = new Uint8Array(HEADER_BYTES + buf.samples.byteLength);
  const view = new DataView(out.buffer);
  // The struct's layout, as flatc's createAudioBufferHeader writes it.
  view.setBigUint64(0, buf.sequence, true);
  view.setBigInt64(8, buf.timestampUs, true);
  view.setUint32(16, buf.frames, true);
  view.setUint16(20, buf.channels, true);
  view.setUint16(22, buf.flags, true);
  new Float32Array(out.buffer, HEADER_BYTES, buf.samples.length).set(buf.samples);
  return out;
}

/** Reads a buffer (copying the samples, so a pooled receive view can be reused). Throws BadMessageError. */
export function decodeAudioBuffer(bytes: Uint8Array): AudioBuffer {
  if (bytes.length < HEADER_BYTES) throw new BadMessageError(`audio buffer of ${bytes.length} bytes is shorter than its ${HEADER_BYTES}-byte header`);
  const h = new AudioBufferHeader().__init(0, new ByteBuffer(bytes));
  const frames = h.frames();
  const channels = h.channels();
  if (channels < 1 || channels > MAX_CHANNELS) throw new BadMessageError(`audio buffer ${h.sequence()} claims ${channels} channels`);
  const want = HEADER_BYTES + frames * channels * 4;
  if (bytes.length !== want) {
    throw new BadMessageError(`audio buffer ${h.sequence()} is ${bytes.length} bytes, but ${frames} frames × ${channels} channels need ${want}`);
  }
  // slice() copies into a fresh, aligned ArrayBuffer.
  const samples = new Float32Array(bytes.slice(HEADER_BYTES).buffer);
  return { sequence: h.sequence(), timestampUs: h.timestampUs(), frames, channels, flags: h.flags(), samples };
}
