import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { runtimeDir } from '../runs.js';

/** The longest path a Unix socket address holds on Linux (sun_path is 108 bytes, NUL included). */
const MAX_SOCKET_PATH = 107;

/** The actions a `libipc run` takes from its control socket: the Manager's own start, stop and restart. */
export const ACTIONS = ['restart', 'stop', 'start'] as const;
/** The private folder a socket is bound in before it is renamed into place: `<dir>/.ctl-XXXXXX/s`. */
export const HIDDEN_PREFIX = '.ctl-';
const HIDDEN_EXTRA = HIDDEN_PREFIX.length + 6 + 2;

export type ControlAction = (typeof ACTIONS)[number];

/** One request on a control socket (one JSON line). `store` must be the run's store: a stale socket answers nobody else's. */
export interface ControlRequest {
  id: number;
  action: ControlAction;
  name: string;
  store: string;
}

/** The answer to one request (one JSON line). */
export type ControlReply = { id: number; ok: true } | { id: number; ok: false; code: string; message: string };

/**
 * Where the run holding `storePath` listens: beside the store (`<store>.sock`), so a dashboard given the
 * same --store finds it whatever its environment; in this user's runtime folder when that path is too long.
 */
export function controlPaths(storePath: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const beside = `${storePath}.sock`;
  const hashed = join(runtimeDir(env, false), `ctl-${createHash('sha256').update(storePath).digest('hex').slice(0, 16)}.sock`);
  const fits = (p: string) => Buffer.byteLength(p) <= MAX_SOCKET_PATH && Buffer.byteLength(dirname(p)) + HIDDEN_EXTRA <= MAX_SOCKET_PATH;
  return fits(beside) ? [beside, hashed] : [hashed];
}
