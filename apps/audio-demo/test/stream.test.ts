// The host's streamer against an in-process "service" (the service's own dsp), so a crash with buffers in
// flight can be staged exactly: the process tests cannot choose how many the real primary finished.
import { describe, expect, it } from 'vitest';
import { decodeAudioBuffer, encodeAudioBuffer, FLAG_RESENT } from '../src/audio-buffer.js';
import { applyGainPan } from '../src/dsp.js';
import { type AudioPath, AudioStreamer } from '../src/stream.js';

const spec = { sampleRate: 48_000, channels: 2, frames: 128, buffers: 100 };

/** Processes what it is sent (gain/pan like the service), unless `dead`; records the flags it saw. */
function fakeService(gain: number, pan: number, opts: { corrupt?: boolean } = {}) {
  const out: Uint8Array[] = [];
  const flags = new Map<number, number>();
  let waiting: ((b: Uint8Array | undefined) => void) | undefined;
  const svc = {
    dead: false,
    hold: 0, // buffers accepted but not processed yet (they will be in flight at the crash)
    held: [] as Uint8Array[],
    flags,
    process(bytes: Uint8Array) {
      const buf = decodeAudioBuffer(bytes);
      flags.set(Number(buf.sequence), buf.flags);
      const samples = applyGainPan(buf.samples, buf.channels, gain, pan);
      if (opts.corrupt && buf.sequence === 3n) samples[0] = samples[0]! + 0.01;
      const result = encodeAudioBuffer({ ...buf, samples });
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(result);
      } else out.push(result);
    },
    path: {
      async send(bytes: Uint8Array) {
        if (svc.dead) return true; // sent into the ring of a process that is gone
        if (svc.hold > 0) {
          svc.hold--;
          svc.held.push(bytes);
        } else svc.process(bytes);
        return true;
      },
      recv: (timeoutMs: number) =>
        out.length > 0
          ? Promise.resolve(out.shift())
          : new Promise<Uint8Array | undefined>((resolve) => {
              waiting = resolve;
              setTimeout(() => resolve(undefined), timeoutMs);
            }),
      tryRecv: () => out.shift(),
    } satisfies AudioPath,
  };
  return svc;
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('AudioStreamer', () => {
  it('checks every returned sample against input × gain and pan', async () => {
    const svc = fakeService(0.75, 0);
    const s = new AudioStreamer(spec, { gain: 0.75, pan: 0 });
    await s.run(svc.path, range(20), { window: 4, timeoutMs: 1000 });
    expect(s.verifiedCount).toBe(20);
    expect(s.maxError).toBe(0);
    expect(s.latenciesMs).toHaveLength(20);
    expect(s.lost(range(20))).toEqual([]);

    const panned = new AudioStreamer(spec, { gain: 0.5, pan: -0.5 });
    await panned.run(fakeService(0.5, -0.5).path, range(5), { window: 2, timeoutMs: 1000 });
    expect(panned.verifiedCount).toBe(5);
  });

  it('counts a buffer with a wrong sample, or a wrong gain, as mismatched and not verified', async () => {
    const s = new AudioStreamer(spec, { gain: 0.75, pan: 0 });
    await s.run(fakeService(0.75, 0, { corrupt: true }).path, range(6), { window: 1, timeoutMs: 1000 });
    expect(s.mismatched).toBe(1);
    expect(s.lost(range(6))).toEqual([3]);
    const wrongGain = new AudioStreamer(spec, { gain: 0.75, pan: 0 });
    await wrongGain.run(fakeService(1, 0).path, range(3), { window: 1, timeoutMs: 1000 });
    expect(wrongGain.mismatched).toBe(3);
  });

  it('re-sends what was in flight at a crash to the next service, flagged, and loses nothing', async () => {
    const first = fakeService(0.75, 0);
    const s = new AudioStreamer(spec, { gain: 0.75, pan: 0 });
    // Stop after 5 came back, with a window of 4 in flight; the service finished 1 of those, then dies.
    first.hold = 3;
    await s.run(first.path, range(40), { window: 4, stopAfter: 5, timeoutMs: 1000 });
    first.dead = true;
    expect(s.inFlight()).toHaveLength(4);
    expect(s.drain(first.path)).toBe(1); // the one it finished before it died
    const resend = s.abandonInFlight();
    expect(resend).toHaveLength(3);

    const second = fakeService(0.75, 0);
    const rest = range(40).filter((seq) => !s.wasSent(seq));
    await s.run(second.path, [...resend, ...rest], { window: 4, timeoutMs: 1000 });
    expect(s.lost(range(40))).toEqual([]);
    expect(s.resent).toBe(3);
    for (const seq of resend) expect(second.flags.get(seq)).toBe(FLAG_RESENT);
    expect(second.flags.get(rest[0]!)).toBe(0);
    expect(s.duplicates).toBe(0);
  });

  it('fails clearly when nothing comes back', async () => {
    const svc = fakeService(1, 0);
    svc.dead = true;
    const s = new AudioStreamer(spec, { gain: 1, pan: 0 });
    await expect(s.run(svc.path, range(3), { window: 2, timeoutMs: 50 })).rejects.toThrow(/no audio buffer came back within 50 ms \(2 in flight\)/);
  });
});
