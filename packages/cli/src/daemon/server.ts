import { lstatSync, rmSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { ExistsError, LibipcError, PermissionError, peerCredentials } from '@libipc/shm';
import { type DaemonReply, lineSplitter, parseRequest } from './protocol.js';

const MAX_CLIENTS = 64;

/** Listens on `path` (a Unix socket path, or `\0name` for an abstract one) with `server`. */
function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * One daemon per home: the abstract socket `name` is bound (atomic; the kernel releases it when the daemon dies,
 * so nothing stale is left). Resolves with the held lock, or with 'taken' when a daemon of this user holds it.
 * A holder of another uid (someone squatting the name) is ERR_LIBIPC_PERMISSION.
 */
export async function takeLock(name: string): Promise<{ release(): void } | 'taken'> {
  const server = createServer((s) => s.destroy());
  try {
    await listen(server, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    const uid = await holderUid(name);
    if (uid !== undefined && uid !== process.getuid?.()) {
      throw new PermissionError(`the libipc daemon's lock is held by uid ${uid}, not by you; another user is squatting it (set LIBIPC_HOME to another folder)`);
    }
    return 'taken';
  }
  return { release: () => server.close() };
}

/** Who listens on an abstract socket (SO_PEERCRED of a connection to it); undefined when nobody does any more. */
function holderUid(name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = connect(name);
    s.once('connect', () => {
      let uid: number | undefined;
      try {
        uid = peerCredentials(s).uid;
      } catch {
        uid = undefined;
      }
      s.destroy();
      resolve(uid);
    });
    s.once('error', () => resolve(undefined));
  });
}

export type Dispatch = (cmd: string, args: Record<string, unknown>) => Promise<unknown>;

/**
 * The daemon's control socket: created 0600 (umask) at `path` after a stale one is removed (the caller holds
 * the lock, so nothing else listens there); a connection of another uid is answered with one error line and
 * closed (SO_PEERCRED, which the peer cannot forge).
 */
export class ControlSocket {
  private readonly clients = new Set<Socket>();

  private constructor(
    readonly path: string,
    private readonly server: Server,
  ) {}

  static async listen(path: string, dispatch: Dispatch, log: (line: string) => void): Promise<ControlSocket> {
    removeStale(path);
    const server = createServer();
    const control = new ControlSocket(path, server);
    server.maxConnections = MAX_CLIENTS;
    server.on('connection', (socket) => control.serve(socket, dispatch, log));
    const mask = process.umask(0o177);
    try {
      await listen(server, path);
    } finally {
      process.umask(mask);
    }
    return control;
  }

  private serve(socket: Socket, dispatch: Dispatch, log: (line: string) => void): void {
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    let uid: number | undefined;
    try {
      uid = peerCredentials(socket).uid;
    } catch {
      uid = undefined;
    }
    const own = process.getuid?.();
    if (uid === undefined || uid !== own) {
      log(`refused a connection of uid ${uid ?? 'unknown'} (only uid ${own} may control this daemon)`);
      socket.on('error', () => socket.destroy());
      // Answered and half-closed; what it sends is read and dropped, so its close ends the connection.
      socket.resume();
      socket.end(`${JSON.stringify({ id: 0, ok: false, code: 'ERR_LIBIPC_PERMISSION', message: `this libipc daemon belongs to uid ${own}; start your own with any libipc command` })}\n`);
      return;
    }
    socket.setEncoding('utf8');
    const reply = (r: DaemonReply) => socket.writable && socket.write(`${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
    const onLine = (line: string) => {
      if (line.trim() === '') return;
      const req = parseRequest(line);
      if (!req.ok) {
        reply({ id: req.id, ok: false, code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: req.message });
        return;
      }
      const { id, cmd, args } = req.request;
      dispatch(cmd, args).then(
        (result) => reply({ id, ok: true, result: result ?? null }),
        (err: unknown) => reply({ id, ok: false, code: err instanceof LibipcError ? err.code : 'ERR_LIBIPC_SYSTEM', message: err instanceof Error ? err.message : String(err) }),
      );
    };
    socket.on('data', lineSplitter(onLine, () => socket.destroy()));
    socket.on('error', () => socket.destroy());
  }

  /** Stops listening; answers being written are flushed, then every connection is closed (at most a second later). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.clients) c.end();
    const grace = setTimeout(() => {
      for (const c of this.clients) c.destroy();
    }, 1000);
    await closed;
    clearTimeout(grace);
    rmSync(this.path, { force: true });
  }
}

/** A socket (or a link) left by a dead daemon is removed, never trusted; anything else there is refused. */
function removeStale(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket() && !st.isSymbolicLink()) throw new ExistsError(`${path} exists and is not a socket; move it away so the libipc daemon can listen there`);
  rmSync(path, { force: true });
}
