import { ExistsError, InvalidArgumentError, type LibipcError, NotFoundError, PermissionError, SpawnError, TooLargeError, validateName } from '@libipc/shm';
import { MAX_ARGS_BYTES } from './options.js';

/** How long a request for a launcher this node has not registered (yet) waits before it is refused. */
export const LAUNCHER_GRACE_MS = 5000;
/** Requests waiting for their launcher, at most: more are refused at once (nobody floods the node's memory). */
export const MAX_PARKED = 1000;
/** The largest request accepted from the inbox: the args' bound plus room for names and ids. */
export const MAX_REQUEST_BYTES = MAX_ARGS_BYTES + 4096;

/** A request in a node's inbox, as written by the node that asks. */
export interface RequestBody {
  launcher: string;
  processName: string;
  args?: unknown[];
  id: string;
  replyTo?: string;
}

/** Whether `v` passes the name rule (for a launcher name read from a request). */
export function isName(v: string): boolean {
  try {
    validateName(v, 'launcher name');
    return true;
  } catch {
    return false;
  }
}

/** Known error codes travel back by name and become the same class on the requesting node. */
export function errorFrom(code: unknown, message: string): LibipcError {
  if (code === 'ERR_LIBIPC_NOT_FOUND') return new NotFoundError(message);
  if (code === 'ERR_LIBIPC_EXISTS') return new ExistsError(message);
  if (code === 'ERR_LIBIPC_INVALID_ARGUMENT') return new InvalidArgumentError(message);
  if (code === 'ERR_LIBIPC_TOO_LARGE') return new TooLargeError(message);
  if (code === 'ERR_LIBIPC_PERMISSION') return new PermissionError(message);
  return new SpawnError(message);
}
