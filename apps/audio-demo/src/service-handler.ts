// The service's control logic as a pure function: (message, state) → (new state, reply, log line).
// The process around it (audio-service.ts) only moves bytes and decides whether to send the reply.
import { type Control, decodeControl, MalformedControlError, ParamType, paramName, type ReplyBody, Status } from './protocol.js';

export interface StreamFormat {
  sampleRate: number;
  channels: number;
  bufferFrames: number;
}

export interface ServiceState {
  streaming: boolean;
  /** The format of the last StartStream (the schema's defaults before one arrives). */
  format: StreamFormat;
  /** Every ParamType's current value. FilterCutoff/FilterResonance are kept and reported, not applied. */
  params: Readonly<Record<ParamType, number>>;
}

export interface Outcome {
  state: ServiceState;
  /** What to answer (the primary sends it; a standby applies the state and stays silent). */
  reply?: ReplyBody;
  /** A line for the service's log (malformed or refused input). */
  log?: string;
}

/** Allowed values per parameter; a value outside is answered with Status.Error and changes nothing. */
export const PARAM_RANGES: Readonly<Record<ParamType, readonly [min: number, max: number]>> = {
  [ParamType.Gain]: [0, 16],
  [ParamType.Pan]: [-1, 1],
  [ParamType.FilterCutoff]: [20, 20_000],
  [ParamType.FilterResonance]: [0.1, 10],
};

const LIMITS = { sampleRate: [8_000, 192_000], channels: [1, 8], bufferFrames: [16, 4_096] } as const;

export function initialState(): ServiceState {
  return {
    streaming: false,
    format: { sampleRate: 48_000, channels: 2, bufferFrames: 512 },
    params: {
      [ParamType.Gain]: 1,
      [ParamType.Pan]: 0,
      [ParamType.FilterCutoff]: 20_000,
      [ParamType.FilterResonance]: 0.707,
    },
  };
}

function isParam(id: number): id is ParamType {
  return Object.prototype.hasOwnProperty.call(PARAM_RANGES, id);
}

const ack = (refSeq: bigint, status: Status): ReplyBody => ({ type: 'ack', refSeq, status });

/** Applies one decoded control message. Never throws for any field values. */
export function applyControl(msg: Control, state: ServiceState): Outcome {
  switch (msg.type) {
    case 'start': {
      const format = { sampleRate: msg.sampleRate, channels: msg.channels, bufferFrames: msg.bufferFrames };
      const bad = (Object.keys(LIMITS) as Array<keyof StreamFormat>).find((k) => !(format[k] >= LIMITS[k][0] && format[k] <= LIMITS[k][1]));
      if (bad) {
        return { state, reply: ack(msg.seq, Status.Error), log: `StartStream seq=${msg.seq} refused: ${bad} ${format[bad]} is outside ${LIMITS[bad].join('–')}` };
      }
      // A second StartStream (the host re-sends it after a failover) is fine: it just sets the format.
      return { state: { ...state, streaming: true, format }, reply: ack(msg.seq, Status.Ok) };
    }
    case 'stop':
      if (!state.streaming) return { state, reply: ack(msg.seq, Status.NotRunning) };
      return { state: { ...state, streaming: false }, reply: ack(msg.seq, Status.Ok) };
    case 'set': {
      if (!isParam(msg.param)) return { state, reply: ack(msg.seq, Status.InvalidParam), log: `SetParam seq=${msg.seq}: unknown ${paramName(msg.param)}` };
      const [min, max] = PARAM_RANGES[msg.param];
      if (!(msg.value >= min && msg.value <= max)) {
        return { state, reply: ack(msg.seq, Status.Error), log: `SetParam seq=${msg.seq}: ${paramName(msg.param)} ${msg.value} is outside ${min}…${max}` };
      }
      // Allowed while not streaming: it takes effect on the next buffer either way.
      return { state: { ...state, params: { ...state.params, [msg.param]: msg.value } }, reply: ack(msg.seq, Status.Ok) };
    }
    case 'get':
      if (!isParam(msg.param)) return { state, reply: ack(msg.seq, Status.InvalidParam), log: `GetParam seq=${msg.seq}: unknown ${paramName(msg.param)}` };
      return { state, reply: { type: 'param', refSeq: msg.seq, param: msg.param, value: state.params[msg.param] } };
  }
}

/**
 * Decodes raw bytes and applies them. Malformed input never throws: when its seq could be read it is
 * answered with Status.Error, otherwise it is ignored with a log line.
 */
export function handleControl(bytes: Uint8Array, state: ServiceState): Outcome {
  let msg: Control;
  try {
    msg = decodeControl(bytes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (err instanceof MalformedControlError && err.seq !== undefined) {
      return { state, reply: ack(err.seq, Status.Error), log: `answered Error: ${why}` };
    }
    return { state, log: `ignored: ${why}` };
  }
  return applyControl(msg, state);
}
