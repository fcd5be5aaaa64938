// The service's signal processing (gain and pan) and the host's test signal (a sine sweep).

/**
 * The pan law: a balance control with unity at the centre. pan ∈ [-1, 1]; at 0 both channels pass
 * unchanged, towards +1 the left channel fades out linearly (right stays at 1), towards -1 the right does.
 * So with pan 0 the output is exactly the input × gain, which the host checks sample by sample.
 */
export function panGains(pan: number): [left: number, right: number] {
  return [Math.min(1, 1 - pan), Math.min(1, 1 + pan)];
}

/** The factor for each channel: gain × the pan law on channels 0 and 1 (mono: gain only; others: gain). */
export function channelGains(gain: number, pan: number, channels: number): Float32Array {
  const g = new Float32Array(channels).fill(gain);
  if (channels >= 2) {
    const [l, r] = panGains(pan);
    g[0] = gain * l;
    g[1] = gain * r;
  }
  return g;
}

/** Interleaved samples × their channel's factor, in float32 (a new array). */
export function applyGainPan(samples: Float32Array, channels: number, gain: number, pan: number): Float32Array {
  const g = channelGains(gain, pan, channels);
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! * g[i % channels]!;
  return out;
}

export interface SweepSpec {
  sampleRate: number;
  channels: number;
  frames: number;
  /** The sweep covers this many buffers, then repeats. */
  buffers: number;
  fromHz?: number;
  toHz?: number;
  amplitude?: number;
}

/**
 * Buffer `index` of an exponential sine sweep (fromHz → toHz), computed from the index alone so that a
 * buffer can be regenerated to re-send it or to check what came back. Channel c is phase-shifted by c × 90°.
 */
export function sweepBuffer(index: number, s: SweepSpec): Float32Array {
  const { sampleRate, channels, frames } = s;
  const f0 = s.fromHz ?? 100;
  const f1 = s.toHz ?? 8000;
  const amp = s.amplitude ?? 0.5;
  const duration = (s.buffers * frames) / sampleRate;
  const l = duration / Math.log(f1 / f0);
  const out = new Float32Array(frames * channels);
  const start = (index % s.buffers) * frames;
  for (let f = 0; f < frames; f++) {
    const t = (start + f) / sampleRate;
    const phase = 2 * Math.PI * f0 * l * (Math.exp(t / l) - 1);
    for (let c = 0; c < channels; c++) out[f * channels + c] = amp * Math.sin(phase + (c * Math.PI) / 2);
  }
  return out;
}
