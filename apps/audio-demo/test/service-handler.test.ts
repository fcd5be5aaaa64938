import { describe, expect, it } from 'vitest';
import { type Control, encodeControl, ParamType, Status } from '../src/protocol.js';
import { handleControl, initialState, type Outcome, type ServiceState } from '../src/service-handler.js';

const run = (msg: Control, state: ServiceState = initialState()): Outcome => handleControl(encodeControl(msg), state);
const start = (seq: bigint) => ({ seq, type: 'start', sampleRate: 48_000, channels: 2, bufferFrames: 512 }) as const;

/** A deterministic pseudo-random sequence (xorshift32), so a failing case can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('control messages', () => {
  it('GetParam before StartStream answers the default', () => {
    const out = run({ seq: 1n, type: 'get', param: ParamType.Gain });
    expect(out.reply).toEqual({ type: 'param', refSeq: 1n, param: ParamType.Gain, value: 1 });
    expect(out.state.streaming).toBe(false);
  });

  it('StartStream starts, a second one (after a failover) is Ok too, StopStream stops', () => {
    let s = initialState();
    let out = run(start(1n), s);
    expect(out.reply).toEqual({ type: 'ack', refSeq: 1n, status: Status.Ok });
    s = out.state;
    expect(s.streaming).toBe(true);
    out = run({ ...start(2n), sampleRate: 44_100 }, s);
    expect(out.reply).toMatchObject({ refSeq: 2n, status: Status.Ok });
    expect(out.state.format.sampleRate).toBe(44_100);
    out = run({ seq: 3n, type: 'stop' }, out.state);
    expect(out.reply).toMatchObject({ refSeq: 3n, status: Status.Ok });
    expect(out.state.streaming).toBe(false);
  });

  it('StartStream uses the schema defaults for fields left out', () => {
    // createStartStream omits values equal to the defaults: the reader must still see 48000/2/512.
    const out = run(start(7n));
    expect(out.state.format).toEqual({ sampleRate: 48_000, channels: 2, bufferFrames: 512 });
  });

  it('StartStream with an impossible format is answered Error and changes nothing', () => {
    for (const bad of [{ sampleRate: 0 }, { channels: 0 }, { channels: 99 }, { bufferFrames: 1_000_000 }]) {
      const out = run({ ...start(4n), ...bad });
      expect(out.reply).toEqual({ type: 'ack', refSeq: 4n, status: Status.Error });
      expect(out.state).toEqual(initialState());
      expect(out.log).toMatch(/StartStream seq=4 refused/);
    }
  });

  it('StopStream while not streaming is NotRunning', () => {
    expect(run({ seq: 5n, type: 'stop' }).reply).toEqual({ type: 'ack', refSeq: 5n, status: Status.NotRunning });
  });

  it('SetParam while not streaming is allowed and GetParam reads it back', () => {
    const set = run({ seq: 1n, type: 'set', param: ParamType.Gain, value: 0.75 });
    expect(set.reply).toEqual({ type: 'ack', refSeq: 1n, status: Status.Ok });
    expect(set.state.streaming).toBe(false);
    const get = run({ seq: 2n, type: 'get', param: ParamType.Gain }, set.state);
    expect(get.reply).toEqual({ type: 'param', refSeq: 2n, param: ParamType.Gain, value: 0.75 });
    for (const param of [ParamType.Pan, ParamType.FilterCutoff, ParamType.FilterResonance]) {
      expect(run({ seq: 3n, type: 'get', param }, set.state).reply).toMatchObject({ type: 'param', param });
    }
  });

  it('an unknown parameter is InvalidParam, for SetParam and GetParam', () => {
    for (const param of [4, 99, 0xffffffff]) {
      const set = run({ seq: 8n, type: 'set', param, value: 1 });
      expect(set.reply).toEqual({ type: 'ack', refSeq: 8n, status: Status.InvalidParam });
      expect(set.state).toEqual(initialState());
      expect(run({ seq: 9n, type: 'get', param }).reply).toEqual({ type: 'ack', refSeq: 9n, status: Status.InvalidParam });
    }
  });

  it('a value out of range (or NaN) is answered Error and not applied', () => {
    for (const [param, value] of [
      [ParamType.Gain, -1],
      [ParamType.Gain, Number.NaN],
      [ParamType.Gain, Number.POSITIVE_INFINITY],
      [ParamType.Pan, 1.5],
      [ParamType.FilterCutoff, 0],
    ] as const) {
      const out = run({ seq: 6n, type: 'set', param, value });
      expect(out.reply).toEqual({ type: 'ack', refSeq: 6n, status: Status.Error });
      expect(out.state).toEqual(initialState());
    }
  });

  it('replies carry the request seq as ref_seq, over the whole uint64 range', () => {
    for (const seq of [0n, 1n, 2n ** 32n + 1n, 2n ** 64n - 1n]) {
      expect(run({ seq, type: 'get', param: ParamType.Pan }).reply?.refSeq).toBe(seq);
    }
  });

  it('never changes the state it was given', () => {
    const s = initialState();
    const frozen = structuredClone(s);
    run(start(1n), s);
    run({ seq: 2n, type: 'set', param: ParamType.Gain, value: 0.5 }, s);
    expect(s).toEqual(frozen);
  });
});

describe('malformed control messages', () => {
  const good = encodeControl({ seq: 42n, type: 'set', param: ParamType.Gain, value: 0.5 });

  it('an empty or truncated message is ignored with a log line', () => {
    for (const bytes of [new Uint8Array(0), good.subarray(0, 4), good.subarray(0, 11)]) {
      const out = handleControl(bytes, initialState());
      expect(out.reply).toBeUndefined();
      expect(out.log).toMatch(/^ignored: malformed control message: \d+ bytes is too short/);
    }
  });

  it('a message cut anywhere is answered Error or ignored, never applied, never thrown', () => {
    for (let len = 0; len < good.length; len++) {
      const out = handleControl(good.slice(0, len), initialState());
      expect(out.state).toEqual(initialState());
      if (out.reply) expect(out.reply).toEqual({ type: 'ack', refSeq: 42n, status: Status.Error });
      else expect(out.log).toMatch(/^ignored: /);
    }
  });

  it('a wrong file identifier is ignored with a log line', () => {
    const bytes = good.slice();
    bytes.set(Buffer.from('LSMP'), 4);
    const out = handleControl(bytes, initialState());
    expect(out.reply).toBeUndefined();
    expect(out.log).toBe('ignored: malformed control message: file identifier "LSMP", expected "AUDP"');
  });

  it('a corrupt root offset is ignored; a corrupt payload offset is answered Error with the seq', () => {
    const root = good.slice();
    new DataView(root.buffer).setUint32(0, 0xfff0, true);
    expect(handleControl(root, initialState()).log).toMatch(/^ignored: .*ControlMsg at 65520 is outside/);

    // The payload offset is the last field the root table points to: find it through the vtable.
    const payload = good.slice();
    const view = new DataView(payload.buffer);
    const rootPos = view.getUint32(0, true);
    const vtable = rootPos - view.getInt32(rootPos, true);
    const payloadField = rootPos + view.getUint16(vtable + 8, true);
    view.setUint32(payloadField, 0x7ffffff0, true);
    const out = handleControl(payload, initialState());
    expect(out.reply).toEqual({ type: 'ack', refSeq: 42n, status: Status.Error });
    expect(out.log).toMatch(/^answered Error: malformed control message seq=42: SetParam payload at \d+ is outside/);
    expect(out.state).toEqual(initialState());
  });

  it('an unknown payload type is answered Error', () => {
    const bytes = good.slice();
    const view = new DataView(bytes.buffer);
    const rootPos = view.getUint32(0, true);
    const vtable = rootPos - view.getInt32(rootPos, true);
    bytes[rootPos + view.getUint16(vtable + 6, true)] = 77;
    const out = handleControl(bytes, initialState());
    expect(out.reply).toEqual({ type: 'ack', refSeq: 42n, status: Status.Error });
    expect(out.log).toMatch(/unknown payload type 77/);
  });

  it('a message without a payload is answered Error', () => {
    const bytes = encodeControl({ seq: 3n, type: 'stop' }).slice();
    const view = new DataView(bytes.buffer);
    const rootPos = view.getUint32(0, true);
    const vtable = rootPos - view.getInt32(rootPos, true);
    view.setUint16(vtable + 8, 0, true); // the payload field "absent"
    expect(handleControl(bytes, initialState()).reply).toEqual({ type: 'ack', refSeq: 3n, status: Status.Error });
  });

  it('random bit flips and random bytes never throw and never apply a state the schema cannot express', () => {
    const next = rng(7);
    const msgs: Control[] = [
      { seq: 1n, type: 'start', sampleRate: 44_100, channels: 2, bufferFrames: 256 },
      { seq: 2n, type: 'stop' },
      { seq: 3n, type: 'set', param: ParamType.Pan, value: -0.25 },
      { seq: 4n, type: 'get', param: ParamType.FilterCutoff },
    ];
    for (let i = 0; i < 5_000; i++) {
      const bytes = encodeControl(msgs[i % msgs.length]!).slice();
      for (let flips = 1 + Math.floor(next() * 4); flips > 0; flips--) {
        const at = Math.floor(next() * bytes.length);
        bytes[at] = bytes[at]! ^ (1 << Math.floor(next() * 8));
      }
      const out = handleControl(bytes, initialState());
      expect(out.reply !== undefined || out.log !== undefined).toBe(true);
      const gain = out.state.params[ParamType.Gain];
      expect(gain >= 0 && gain <= 16).toBe(true);
    }
    for (let i = 0; i < 2_000; i++) {
      const bytes = new Uint8Array(Math.floor(next() * 80));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(next() * 256);
      if (i % 2 === 0 && bytes.length >= 8) bytes.set(Buffer.from('AUDP'), 4); // get past the identifier check
      expect(() => handleControl(bytes, initialState())).not.toThrow();
    }
  });
});
