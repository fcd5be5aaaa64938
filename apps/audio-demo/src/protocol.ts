// The audio protocol as plain data: encoders for both directions, and a checked decoder for control
// messages (the service must survive any bytes it is sent).
import { BadMessageError } from '@libipc/shm';
import { Builder, ByteBuffer } from 'flatbuffers';
import {
  Ack,
  ControlMsg,
  ControlPayload,
  GetParam,
  ParamType,
  ParamValue,
  ReplyPayload,
  SetParam,
  StartStream,
  Status,
  StopStream,
} from './generated/audio_protocol_generated.js';
import { ReplyMsg } from './generated/audio/reply-msg.js';

export { ControlMsg, ParamType, ReplyMsg, Status };

/** The schema's file_identifier: written by every encoder, required by every decoder. */
export const FILE_IDENTIFIER = 'AUDP';

export type Control =
  | { seq: bigint; type: 'start'; sampleRate: number; channels: number; bufferFrames: number }
  | { seq: bigint; type: 'stop' }
  | { seq: bigint; type: 'set'; param: number; value: number }
  | { seq: bigint; type: 'get'; param: number };

export type ReplyBody = { type: 'ack'; refSeq: bigint; status: Status } | { type: 'param'; refSeq: bigint; param: number; value: number };
export type Reply = ReplyBody & { seq: bigint };

/**
 * ReplyMsg is not the schema's root_type (ControlMsg is), so flatc gives it no finish…Buffer or
 * bufferHasIdentifier; this adds them so that TypedChannel can carry replies with the same identifier.
 */
export class ReplyMsgRoot extends ReplyMsg {
  static getRootAsReplyMsgRoot(bb: ByteBuffer, obj?: ReplyMsg): ReplyMsg {
    return ReplyMsg.getRootAsReplyMsg(bb, obj);
  }
  static finishReplyMsgRootBuffer(b: Builder, offset: number): void {
    b.finish(offset, FILE_IDENTIFIER);
  }
  static bufferHasIdentifier(bb: ByteBuffer): boolean {
    return bb.__has_identifier(FILE_IDENTIFIER);
  }
}

// ---- encoding ----

/** Writes a ControlMsg into `b` and returns its offset (a build function for TypedChannel.send). */
export function buildControl(b: Builder, msg: Control): number {
  let type: ControlPayload;
  let payload: number;
  switch (msg.type) {
    case 'start':
      type = ControlPayload.StartStream;
      payload = StartStream.createStartStream(b, msg.sampleRate, msg.channels, msg.bufferFrames);
      break;
    case 'stop':
      type = ControlPayload.StopStream;
      StopStream.startStopStream(b);
      payload = StopStream.endStopStream(b);
      break;
    case 'set':
      type = ControlPayload.SetParam;
      payload = SetParam.createSetParam(b, msg.param, msg.value);
      break;
    case 'get':
      type = ControlPayload.GetParam;
      payload = GetParam.createGetParam(b, msg.param);
      break;
  }
  return ControlMsg.createControlMsg(b, msg.seq, type, payload);
}

export function buildReply(b: Builder, msg: Reply): number {
  if (msg.type === 'ack') {
    const payload = Ack.createAck(b, msg.refSeq, msg.status);
    return ReplyMsg.createReplyMsg(b, msg.seq, ReplyPayload.Ack, payload);
  }
  const payload = ParamValue.createParamValue(b, msg.refSeq, msg.param, msg.value);
  return ReplyMsg.createReplyMsg(b, msg.seq, ReplyPayload.ParamValue, payload);
}

/** A finished control message (bytes), for tests and tools that send without a TypedChannel. */
export function encodeControl(msg: Control): Uint8Array {
  const b = new Builder(64);
  b.finish(buildControl(b, msg), FILE_IDENTIFIER);
  return b.asUint8Array();
}

export function encodeReply(msg: Reply): Uint8Array {
  const b = new Builder(64);
  b.finish(buildReply(b, msg), FILE_IDENTIFIER);
  return b.asUint8Array();
}

// ---- decoding ----

/** A control message that cannot be read; `seq` is set when the envelope was intact enough to answer it. */
export class MalformedControlError extends BadMessageError {
  readonly seq: bigint | undefined;
  constructor(why: string, seq?: bigint) {
    super(`malformed control message${seq === undefined ? '' : ` seq=${seq}`}: ${why}`);
    this.seq = seq;
  }
}

/**
 * Checks that the table at `pos` and its vtable lie inside the buffer, and that each of the first
 * `fields` fields (present or not) has room for `fieldBytes` bytes inside the table. The FlatBuffers
 * TypeScript runtime reads out of range as zeros instead of failing, so this is what catches corrupt offsets.
 */
function checkTable(bb: ByteBuffer, pos: number, fieldBytes: number[], what: string, seq?: bigint): void {
  const size = bb.capacity();
  const bad = (why: string) => new MalformedControlError(`${what} ${why}`, seq);
  if (pos < 8 || pos % 4 !== 0 || pos + 4 > size) throw bad(`at ${pos} is outside the ${size}-byte buffer`);
  const vtable = pos - bb.readInt32(pos);
  if (vtable < 0 || vtable % 2 !== 0 || vtable + 4 > size) throw bad(`has its vtable at ${vtable}, outside the buffer`);
  const vsize = bb.readUint16(vtable);
  const tsize = bb.readUint16(vtable + 2);
  if (vsize < 4 || vsize % 2 !== 0 || vtable + vsize > size || tsize < 4 || pos + tsize > size) {
    throw bad('or its vtable runs past the end of the buffer');
  }
  fieldBytes.forEach((bytes, i) => {
    const slot = 4 + 2 * i;
    const at = slot < vsize ? bb.readUint16(vtable + slot) : 0;
    if (at !== 0 && (at < 4 || at + bytes > tsize)) throw bad(`field ${i} lies outside the table`);
  });
}

/** The union member's table position, checked. */
function unionTable(bb: ByteBuffer, msgPos: number, fieldBytes: number[], what: string, seq: bigint): number {
  const offset = bb.__offset(msgPos, 8);
  if (offset === 0) throw new MalformedControlError(`${what} has no payload table`, seq);
  const ref = msgPos + offset;
  const pos = ref + bb.readUint32(ref);
  checkTable(bb, pos, fieldBytes, `${what} payload`, seq);
  return pos;
}

/**
 * Reads a control message from raw bytes, checking every offset it follows. Throws MalformedControlError
 * (an ERR_LIBIPC_BAD_MESSAGE) for anything short, foreign, corrupt, or of an unknown payload type.
 */
export function decodeControl(bytes: Uint8Array): Control {
  if (!(bytes instanceof Uint8Array)) throw new MalformedControlError('not a byte array');
  if (bytes.length < 12) throw new MalformedControlError(`${bytes.length} bytes is too short`);
  const bb = new ByteBuffer(bytes);
  if (!ControlMsg.bufferHasIdentifier(bb)) {
    const found = Buffer.from(bytes.subarray(4, 8)).toString('latin1');
    throw new MalformedControlError(`file identifier ${JSON.stringify(found)}, expected "${FILE_IDENTIFIER}"`);
  }
  const rootPos = bb.readUint32(0);
  checkTable(bb, rootPos, [8, 1, 4], 'ControlMsg');
  const msg = ControlMsg.getRootAsControlMsg(bb);
  const seq = msg.seq();
  const type = msg.payloadType();
  switch (type) {
    case ControlPayload.StartStream: {
      const p = new StartStream().__init(unionTable(bb, rootPos, [4, 2, 4], 'StartStream', seq), bb);
      return { seq, type: 'start', sampleRate: p.sampleRate(), channels: p.channels(), bufferFrames: p.bufferFrames() };
    }
    case ControlPayload.StopStream:
      unionTable(bb, rootPos, [], 'StopStream', seq);
      return { seq, type: 'stop' };
    case ControlPayload.SetParam: {
      const p = new SetParam().__init(unionTable(bb, rootPos, [4, 4], 'SetParam', seq), bb);
      return { seq, type: 'set', param: p.paramId(), value: p.value() };
    }
    case ControlPayload.GetParam: {
      const p = new GetParam().__init(unionTable(bb, rootPos, [4], 'GetParam', seq), bb);
      return { seq, type: 'get', param: p.paramId() };
    }
    default:
      throw new MalformedControlError(`unknown payload type ${type}`, seq);
  }
}

/** Reads a reply the host received (TypedChannel already checked its shape). */
export function readReply(msg: ReplyMsg): Reply {
  const seq = msg.seq();
  switch (msg.payloadType()) {
    case ReplyPayload.Ack: {
      const a = msg.payload(new Ack()) as Ack;
      return { seq, type: 'ack', refSeq: a.refSeq(), status: a.status() };
    }
    case ReplyPayload.ParamValue: {
      const p = msg.payload(new ParamValue()) as ParamValue;
      return { seq, type: 'param', refSeq: p.refSeq(), param: p.paramId(), value: p.value() };
    }
    default:
      throw new BadMessageError(`reply seq=${seq} has unknown payload type ${msg.payloadType()}`);
  }
}

export function statusName(status: number): string {
  return Status[status] ?? `Status(${status})`;
}

export function paramName(param: number): string {
  return ParamType[param] ?? `ParamType(${param})`;
}
