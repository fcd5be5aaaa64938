export { Channel, Route } from './channel.js';
export type { ChannelOptions, Mode, OnFull, RecvOptions, SendOptions } from './options.js';
export { packMessages, packedCount, unpackMessages, type PackedMessages } from './packed.js';
export { TypedChannel, TypedRoute, type FlatBufferTable, type TypedOptions } from './typed.js';
export {
  BadMessageError,
  ClosedError,
  IncompatibleError,
  InvalidArgumentError,
  InvalidNameError,
  LaggedError,
  LibipcError,
  TimeoutError,
  TooLargeError,
} from '@libipc/shm';
export { inspectChannel, channelBells, type ChannelSnapshot, type ChannelHandleInfo } from './inspect.js';
