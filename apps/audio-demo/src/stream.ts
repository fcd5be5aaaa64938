// The host's side of the audio stream: sends sweep buffers with a bounded number in flight, checks every
// buffer that comes back against input × the expected channel gains, and knows what is still in flight.
import { decodeAudioBuffer, encodeAudioBuffer, FLAG_RESENT } from './audio-buffer.js';
import { channelGains, type SweepSpec, sweepBuffer } from './dsp.js';

/** The two data channels of the current primary, as the streamer needs them. */
export interface AudioPath {
  send(bytes: Uint8Array): Promise<boolean>;
  recv(timeoutMs: number): Promise<Uint8Array | undefined>;
  tryRecv(): Uint8Array | undefined;
}

export interface RunOptions {
  /** Buffers in flight at most (sent, not yet back). */
  window: number;
  /** Return as soon as this many came back in this run, leaving the window full (to crash mid-stream). */
  stopAfter?: number;
  /** Give up when nothing comes back for this long. */
  timeoutMs: number;
}

/** Sample error allowed between what came back and input × gain (float32 rounding). */
export const SAMPLE_TOLERANCE = 1e-6;

export class AudioStreamer {
  readonly spec: SweepSpec;
  readonly latenciesMs: number[] = [];
  maxError = 0;
  mismatched = 0;
  duplicates = 0;
  resent = 0;
  private readonly gains: Float32Array;
  private readonly inflight = new Map<number, Float32Array>();
  private readonly verified = new Set<number>();
  private readonly sentBefore = new Set<number>();

  constructor(spec: SweepSpec, expected: { gain: number; pan: number }) {
    this.spec = spec;
    // The service multiplies float32 samples by float32 factors: compute the expectation the same way.
    this.gains = channelGains(Math.fround(expected.gain), Math.fround(expected.pan), spec.channels);
  }

  get verifiedCount(): number {
    return this.verified.size;
  }

  /** Sequences sent and not (yet) back, oldest first. */
  inFlight(): number[] {
    return [...this.inflight.keys()];
  }

  wasSent(seq: number): boolean {
    return this.sentBefore.has(seq);
  }

  /** Forgets what is in flight (its service died) and returns it, oldest first, to be sent again. */
  abandonInFlight(): number[] {
    const seqs = this.inFlight();
    this.inflight.clear();
    return seqs;
  }

  /** Sequences of `planned` that never came back verified. */
  lost(planned: Iterable<number>): number[] {
    return [...planned].filter((seq) => !this.verified.has(seq));
  }

  /**
   * Streams `seqs` in order through `path`, at most `window` in flight; resolves when all came back
   * (or `stopAfter` did). Rejects when the channel has no receiver or nothing comes back in time.
   */
  async run(path: AudioPath, seqs: readonly number[], opts: RunOptions): Promise<{ received: number; elapsedMs: number }> {
    const start = performance.now();
    const mine = new Set(seqs);
    let next = 0;
    let received = 0;
    for (;;) {
      while (next < seqs.length && this.countInFlight(mine) < opts.window) await this.send(path, seqs[next++]!);
      if (this.countInFlight(mine) === 0 || (opts.stopAfter !== undefined && received >= opts.stopAfter)) break;
      const bytes = await path.recv(opts.timeoutMs);
      if (bytes === undefined) {
        throw new Error(`no audio buffer came back within ${opts.timeoutMs} ms (${this.countInFlight(mine)} in flight)`);
      }
      if (this.accept(bytes)) received++;
    }
    return { received, elapsedMs: performance.now() - start };
  }

  /** Takes whatever already came back without waiting (the old primary's last output); returns how many. */
  drain(path: AudioPath): number {
    let n = 0;
    for (let bytes = path.tryRecv(); bytes !== undefined; bytes = path.tryRecv()) if (this.accept(bytes)) n++;
    return n;
  }

  /** Checks one returned buffer; true when it was in flight and its samples are right. */
  accept(bytes: Uint8Array): boolean {
    const receivedAt = performance.now();
    const buf = decodeAudioBuffer(bytes);
    const seq = Number(buf.sequence);
    const input = this.inflight.get(seq);
    if (input === undefined) {
      this.duplicates++;
      return false;
    }
    this.inflight.delete(seq);
    this.latenciesMs.push(receivedAt - Number(buf.timestampUs) / 1000);
    const ch = this.spec.channels;
    let worst = buf.samples.length === input.length && buf.channels === ch ? 0 : Number.POSITIVE_INFINITY;
    for (let i = 0; i < input.length && worst !== Number.POSITIVE_INFINITY; i++) {
      const err = Math.abs(buf.samples[i]! - Math.fround(input[i]! * this.gains[i % ch]!));
      if (!(err <= worst)) worst = err; // NaN counts as the worst
    }
    if (Number.isFinite(worst)) this.maxError = Math.max(this.maxError, worst);
    if (!(worst <= SAMPLE_TOLERANCE)) {
      this.mismatched++;
      return false;
    }
    this.verified.add(seq);
    return true;
  }

  private async send(path: AudioPath, seq: number): Promise<void> {
    const again = this.sentBefore.has(seq);
    const samples = sweepBuffer(seq, this.spec);
    const bytes = encodeAudioBuffer({
      sequence: BigInt(seq),
      timestampUs: BigInt(Math.round(performance.now() * 1000)),
      frames: this.spec.frames,
      channels: this.spec.channels,
      flags: again ? FLAG_RESENT : 0,
      samples,
    });
    if (again) this.resent++;
    this.sentBefore.add(seq);
    this.inflight.set(seq, samples);
    if (!(await path.send(bytes))) throw new Error(`audio buffer ${seq} not sent: no service is receiving on the data channel`);
  }

  private countInFlight(of: Set<number>): number {
    let n = 0;
    for (const seq of this.inflight.keys()) if (of.has(seq)) n++;
    return n;
  }
}
