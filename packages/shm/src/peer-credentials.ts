import type { Socket } from 'node:net';
import { InvalidArgumentError, SystemError } from './errors.js';
import { native } from './native.js';
import { describeValue } from './options.js';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * Who is at the other end of a connected Unix domain socket: the kernel's record made at connect time
 * (SO_PEERCRED), which the peer cannot forge. A control socket checks `uid` before it obeys anyone.
 */
export function peerCredentials(socket: Socket): PeerCredentials {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } } | null)?._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new InvalidArgumentError(`peerCredentials needs a connected Unix domain socket (a net.Socket with an fd), got ${describeValue(socket)}`);
  }
  try {
    const [pid, uid, gid] = native().peerCredentials(fd);
    return { pid, uid, gid };
  } catch (err) {
    const e = err as { errno?: string; message?: string };
    throw new SystemError(`cannot read the peer's credentials of a socket: ${e.message ?? String(err)}; is it a connected Unix domain socket?`, {
      errno: e.errno ?? 'EIO',
      syscall: 'getsockopt',
      cause: err,
    });
  }
}
