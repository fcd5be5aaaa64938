import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { PermissionError } from '@libipc/shm';
import { runtimeDir } from '../runs.js';
import { defaultStoreExtension } from '../store-file.js';

/** The longest path a Unix socket address holds on Linux (sun_path is 108 bytes, NUL included). */
const MAX_SOCKET_PATH = 107;

/** Where the daemon of one home keeps everything: persistent across reboots (save/resurrect need that). */
export interface DaemonHome {
  dir: string;
  socket: string;
  pidFile: string;
  daemonLog: string;
  store: string;
  dump: string;
  logs: string;
  /** The abstract socket name held while the daemon lives: one daemon per home, released by the kernel at death. */
  lockName: string;
}

/** `$LIBIPC_HOME`, else `~/.libipc`. */
export function homeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LIBIPC_HOME ? resolve(env.LIBIPC_HOME) : join(env.HOME || homedir(), '.libipc');
}

/** The daemon's paths for `env` (pure: nothing is created). */
export function daemonHome(env: NodeJS.ProcessEnv = process.env): DaemonHome {
  const dir = homeDir(env);
  const hash = createHash('sha256').update(dir).digest('hex').slice(0, 16);
  const uid = process.getuid?.() ?? 0;
  const beside = join(dir, 'daemon.sock');
  // A home too deep for a socket address: the socket goes to this user's runtime folder, named after the home.
  const socket = Buffer.byteLength(beside) <= MAX_SOCKET_PATH ? beside : join(runtimeDir(env, false), `daemon-${hash}.sock`);
  const storeName = env.LIBIPC_DAEMON_STORE ?? `store${defaultStoreExtension()}`;
  return {
    dir,
    socket,
    pidFile: join(dir, 'daemon.pid'),
    daemonLog: join(dir, 'daemon.log'),
    store: join(dir, storeName),
    dump: join(dir, 'dump.json'),
    logs: join(dir, 'logs'),
    lockName: `\0libipc.daemon.${uid}.${hash}`,
  };
}

/**
 * Creates the home (0700) or checks the one there: a symlink, a folder of another user or one that group or
 * others may enter is refused (ERR_LIBIPC_PERMISSION), so nobody else can plant a socket or a store in it.
 */
export function ensureHome(home: DaemonHome, env: NodeJS.ProcessEnv = process.env): void {
  mkdirSync(home.dir, { recursive: true, mode: 0o700 });
  checkPrivateDir(home.dir);
  if (!home.socket.startsWith(`${home.dir}/`)) checkPrivateDir(runtimeDir(env, true));
}

export function checkPrivateDir(dir: string): void {
  const st = lstatSync(dir);
  const own = process.getuid?.();
  if (st.isSymbolicLink()) throw new PermissionError(`${dir} is a symbolic link; the libipc daemon's home must be a real folder (remove the link, or set LIBIPC_HOME)`);
  if (!st.isDirectory()) throw new PermissionError(`${dir} is not a folder; move it away, or set LIBIPC_HOME to another place`);
  if (own !== undefined && st.uid !== own) throw new PermissionError(`${dir} belongs to uid ${st.uid}, not to you (uid ${own}); set LIBIPC_HOME to a folder of yours`);
  if ((st.mode & 0o077) !== 0) throw new PermissionError(`${dir} may be entered by others (mode ${(st.mode & 0o777).toString(8)}); run 'chmod 700 ${dir}'`);
}
