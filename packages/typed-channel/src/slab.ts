// Where a receiver's messages land: copies in slabs (views carved one after another, like Buffer's pool), or,
// with { copy: false }, a view of the ring slot itself (the native core detaches it at the next receive).
import { InvalidArgumentError, LaggedError } from '@libipc/shm';
import type { NativeChannelCore } from './native.js';

// Received one-slot messages are views into slabs of this size (like Buffer.allocUnsafe's pool): one
// allocation per many messages instead of one each.
export const SLAB_BYTES = 256 * 1024;

export class ReceiveSlab {
  buffer = new ArrayBuffer(0);
  offset = 0;
  /** A slot's payload: the room a one-slot message needs. */
  readonly #payload: number;

  constructor(slotPayload: number) {
    this.#payload = slotPayload;
  }

  /** copy: false (in place) is only safe where senders never overwrite unread slots. */
  inPlace(copy: boolean | undefined, handle: { onFull: string; name: string; what(): string }): boolean {
    if (copy !== false) return false;
    if (handle.onFull === 'lag') {
      throw new InvalidArgumentError(
        `${handle.what()} ${handle.name} is in 'lag' mode, where a sender may overwrite a slot while it is read: in-place reads ({ copy: false }) need 'wait' mode`,
      );
    }
    return true;
  }

  /** A slab with room for at least `want` bytes (and one slot payload) at `offset`: received messages are views into it. */
  room(want = 0): void {
    const room = Math.max(want, this.#payload);
    if (this.buffer.byteLength - this.offset < room) {
      this.buffer = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, room)).buffer;
      this.offset = 0;
    }
  }

  /** One message (copied here, or in place), undefined when nothing came within spinUs; throws LaggedError. */
  takeOne(core: NativeChannelCore, spinUs: number, inPlace = false): Uint8Array | undefined {
    this.room();
    const r = core.recv(spinUs, this.buffer, this.offset, inPlace);
    if (typeof r !== 'number') return r;
    if (r === -1) return undefined;
    if (r < 0) throw new LaggedError(-2 - r);
    const msg = new Uint8Array(this.buffer, this.offset, r);
    this.offset += (r + 7) & ~7;
    return msg;
  }
}
