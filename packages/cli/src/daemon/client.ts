// Talking to the daemon: connect to its socket, starting it first when none runs (detached, one per home).
import { spawn } from 'node:child_process';
import { closeSync, lstatSync, openSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { IllegalStateError, LibipcError, PermissionError, TimeoutError, peerCredentials } from '@libipc/shm';
import { lastLines } from '../log-files.js';
import { READY_FD_ENV } from './daemon.js';
import { type DaemonHome, daemonHome, ensureHome } from './home.js';
import { lineSplitter } from './protocol.js';

/** An error the daemon answered with (its code kept). */
export class DaemonError extends LibipcError {}

/** The libipc bin that runs `daemon` (this file is bundled into dist/bin.js and dist/index.*). */
export function binPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.LIBIPC_BIN || fileURLToPath(new URL('./bin.js', import.meta.url));
}

const START_TIMEOUT_MS = 15_000;
let nextId = 1;

/** Connects to the daemon's socket; undefined when no daemon listens there (none, or a dead one's leftover). */
export async function connectDaemon(home: DaemonHome): Promise<Socket | undefined> {
  let st;
  try {
    st = lstatSync(home.socket);
  } catch {
    return undefined;
  }
  const own = process.getuid?.();
  if (!st.isSocket()) return undefined; // the daemon replaces it
  if (own !== undefined && st.uid !== own) throw new PermissionError(`${home.socket} belongs to uid ${st.uid}, not to you; set LIBIPC_HOME to a folder of yours`);
  return new Promise((resolve, reject) => {
    const s = connect(home.socket);
    s.once('connect', () => {
      s.removeAllListeners('error');
      // The other end must be ours too: never talk to something another user put in our place.
      const peer = peerCredentials(s);
      if (own !== undefined && peer.uid !== own) {
        s.destroy();
        reject(new PermissionError(`the process listening on ${home.socket} runs as uid ${peer.uid}, not as you`));
        return;
      }
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve(undefined);
      else reject(err);
    });
  });
}

/**
 * Starts a daemon for `env`'s home, detached (its own session, output to daemon.log), and resolves once it
 * listens. Two clients racing here end with one daemon: the loser's daemon finds the lock taken and exits 0.
 */
export async function startDaemon(env: NodeJS.ProcessEnv, home: DaemonHome = daemonHome(env)): Promise<'started' | 'already'> {
  ensureHome(home, env);
  const logFd = openSync(home.daemonLog, 'a', 0o600);
  let child;
  try {
    child = spawn(process.execPath, [binPath(env), 'daemon'], {
      detached: true,
      stdio: ['ignore', logFd, logFd, 'pipe'],
      env: { ...env, [READY_FD_ENV]: '3' },
    });
  } finally {
    closeSync(logFd);
  }
  const ready = child.stdio[3]!;
  const outcome = await new Promise<'ready' | 'already' | 'timeout' | { exit: number | null }>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), START_TIMEOUT_MS);
    let text = '';
    ready.on('data', (d: Buffer) => {
      text += d.toString();
      if (/READY|ALREADY/.test(text)) {
        clearTimeout(timer);
        resolve(text.includes('ALREADY') ? 'already' : 'ready');
      }
    });
    ready.on('error', () => undefined);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ exit: code });
    });
  });
  ready.destroy();
  child.unref();
  if (outcome === 'ready') return 'started';
  if (outcome === 'already' || (typeof outcome === 'object' && outcome.exit === 0)) return 'already';
  const tail = lastLines(home.daemonLog, 10).join('\n  ');
  if (outcome === 'timeout') throw new TimeoutError(`the libipc daemon did not start within ${START_TIMEOUT_MS} ms; its log (${home.daemonLog}) ends with:\n  ${tail}`);
  throw new IllegalStateError(`the libipc daemon exited with code ${outcome.exit} while starting; its log (${home.daemonLog}) ends with:\n  ${tail}`);
}

/** A connection to the daemon, started when none runs (`start: false`: undefined then). */
export async function daemonConnection(env: NodeJS.ProcessEnv, opts: { start: boolean }): Promise<Socket | undefined> {
  const home = daemonHome(env);
  const s = await connectDaemon(home);
  if (s || !opts.start) return s;
  const how = await startDaemon(env, home);
  // Another client's daemon won the race: it holds the lock and listens in a moment (bounded wait).
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    const again = await connectDaemon(home);
    if (again) return again;
    if (how === 'started' || Date.now() > deadline) {
      throw new TimeoutError(`the libipc daemon does not answer on ${home.socket}; its log ${home.daemonLog} says why`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Sends one request on `socket` and resolves with its result (rejects with the daemon's error, code kept). */
export function ask<T = unknown>(socket: Socket, cmd: string, args: Record<string, unknown> = {}): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const done = (f: () => void) => {
      if (settled) return;
      settled = true;
      socket.off('data', onData);
      f();
    };
    const onData = lineSplitter(
      (line) => {
        let reply: { id: number; ok: boolean; result?: unknown; code?: string; message?: string };
        try {
          reply = JSON.parse(line);
        } catch {
          return done(() => reject(new IllegalStateError('the libipc daemon answered something that is not JSON')));
        }
        if (reply.id !== id && reply.id !== 0) return;
        if (reply.ok) done(() => resolve(reply.result as T));
        else done(() => reject(new DaemonError(reply.code ?? 'ERR_LIBIPC_SYSTEM', reply.message ?? 'the daemon refused')));
      },
      () => done(() => reject(new IllegalStateError('the libipc daemon answered a line too long'))),
      64 * 1024 * 1024,
    );
    socket.setEncoding('utf8');
    socket.on('data', onData);
    socket.once('close', () => done(() => reject(new IllegalStateError(`the libipc daemon closed the connection before answering '${cmd}'`))));
    socket.once('error', (err) => done(() => reject(new IllegalStateError(`cannot talk to the libipc daemon: ${err.message}`))));
    socket.write(`${JSON.stringify({ id, cmd, args })}\n`);
  });
}

/** One request to the daemon (started first unless `start: false`, which resolves undefined when none runs). */
export async function request<T = unknown>(env: NodeJS.ProcessEnv, cmd: string, args: Record<string, unknown> = {}, opts: { start?: boolean } = {}): Promise<T | undefined> {
  const socket = await daemonConnection(env, { start: opts.start !== false });
  if (!socket) return undefined;
  try {
    return await ask<T>(socket, cmd, args);
  } finally {
    socket.end();
    socket.destroy();
  }
}
