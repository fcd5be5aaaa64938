import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAddon } from '@libipc/shm';

/** Results of ChannelCore.trySend. */
export const SendStatus = { Sent: 0, NoReceiver: 1, Busy: 2, Full: 3, Stream: 4 } as const;
export type SendStatus = (typeof SendStatus)[keyof typeof SendStatus];

/** The addon's surface (internal): one ChannelCore per handle, bound to one row of the receiver table. */
export interface NativeChannelCore {
  trySend(data: Uint8Array, selfReceives: 0 | 1, spinUs: number): SendStatus;
  writeWhole(data: Uint8Array): boolean;
  writeSome(data: Uint8Array, pos: number): number;
  freeSlots(need: number): number;
  setRoomTarget(want: number): void;
  slowest(): number;
  activate(): void;
  deactivate(row?: number): boolean;
  isActive(row?: number): boolean;
  recv(spinUs: number, slab: ArrayBuffer, offset: number, inPlace?: boolean): Uint8Array | number;
  recvPacked(
    max: number,
    slab: ArrayBuffer,
    offset: number,
    starts: Uint32Array,
    align: 1 | 8,
    spinUs: number,
    lengths?: Uint32Array,
  ): number | Uint8Array;
  trySendMany(messages: Uint8Array[], selfReceives: 0 | 1, spinUs: number): number;
  trySendPacked(data: Uint8Array, offsets: Uint32Array, selfReceives: 0 | 1, spinUs: number): number;
  releaseView(): void;
  pending(): boolean;
  close(): void;
}

/** A receiver's doorbell: a FIFO the event loop polls; arm(cb) calls cb once after a sender rang it. */
export interface NativeDoorbell {
  arm(callback: () => void): void;
  disarm(): void;
  close(): void;
}

/** The doorbell at `path`, over the addon's id-named bells. */
export function openDoorbell(bin: NativeBinding, path: string): NativeDoorbell {
  const id = bin.bellOpen(path);
  return {
    arm: (callback) => bin.bellArm(id, callback),
    disarm: () => bin.bellDisarm(id),
    close: () => bin.bellClose(id),
  };
}

/** Byte offsets into a channel segment (channel_layout.h is the source of truth). */
export interface ChannelLayout {
  version: number;
  maxHandles: number;
  slotHeader: number;
  control: number;
  identities: number;
  receivers: number;
  ring: number;
  receiverFlags: number;
  receiverRow: number;
  receiverBell: number;
  receiverCursor: number;
  receiverMissed: number;
  receiverArmed: number;
  type: number;
  onFull: number;
  capacity: number;
  slotSize: number;
  maxMessage: number;
  receiverCount: number;
  membership: number;
  sendLock: number;
  routePid: number;
  routeTag: number;
  routeStart: number;
  writeCursor: number;
  nextMsg: number;
  recvSleepers: number;
  sendSleepers: number;
  readProgress: number;
  roomTarget: number;
}

export interface NativeBinding {
  ChannelCore: new (buffer: ArrayBuffer, row: number, bellPrefix: string, objectName: string, dev: bigint, inode: bigint) => NativeChannelCore;
  /** Creates a receiver's doorbell FIFO and polls it; the id names it (owned by the environment, not by V8's GC). */
  bellOpen(path: string): number;
  /** Calls `callback` once, from the event loop, after the bell has been rung (possibly already). */
  bellArm(id: number, callback: () => void): void;
  bellDisarm(id: number): void;
  /** Stops polling and closes the FIFO (the file is removed by the caller). Idempotent. */
  bellClose(id: number): void;
  init(buffer: ArrayBuffer, type: number, onFull: number, capacity: number, slotSize: number, maxMessage: number): void;
  valid(buffer: ArrayBuffer): boolean;
  deactivateRow(buffer: ArrayBuffer, row: number): boolean;
  segmentSize(capacity: number, slotSize: number): number;
  layout: ChannelLayout;
}

/** The package root, where node-gyp-build looks for prebuilds/ and build/ (same depth from src/ and dist/). */
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

let binding: NativeBinding | undefined;

export function native(): NativeBinding {
  binding ??= loadAddon<NativeBinding>('@libipc/typed-channel', packageRoot);
  return binding;
}
