import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { IllegalStateError, LibipcError, NotFoundError, TimeoutError } from '@libipc/shm';
import { type ControlAction, type ControlReply, controlPaths } from './control-path.js';

/** An answer from the run that carries the run's own error code. */
export class ControlRefusedError extends LibipcError {}

let nextId = 1;

/**
 * Asks the `libipc run` that holds `storePath` to restart, stop or start `name`, through its control socket;
 * resolves once the run's Manager has done it. ERR_LIBIPC_NOT_FOUND when no run listens for that store.
 */
export async function sendControl(storePath: string, action: ControlAction, name: string, opts: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<void> {
  const own = process.getuid?.();
  // Only a socket of this user: another user's socket in a shared folder is not our run.
  const path = controlPaths(storePath, opts.env).find((p) => {
    try {
      const st = lstatSync(p);
      return st.isSocket() && (own === undefined || st.uid === own);
    } catch {
      return false;
    }
  });
  if (!path) throw new NotFoundError(`no libipc run takes requests for ${storePath}; start one with 'libipc run <config> --store ${storePath}'`);
  const id = nextId++;
  const reply = await new Promise<ControlReply>((resolve, reject) => {
    const socket = connect(path);
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`the libipc run holding ${storePath} did not finish '${action} ${name}' within ${opts.timeoutMs} ms; it goes on, watch the page`));
    }, opts.timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ id, action, name, store: storePath })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(buffered.slice(0, nl)) as ControlReply);
      } catch {
        reject(new IllegalStateError(`the control socket of ${storePath} answered something that is not JSON`));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'ECONNREFUSED' || err.code === 'ENOENT'
          ? new NotFoundError(`no libipc run takes requests for ${storePath} (the one that did is gone); start one with 'libipc run <config> --store ${storePath}'`)
          : new IllegalStateError(`cannot reach the libipc run holding ${storePath}: ${err.message}`),
      ),
    );
    socket.on('close', () => fail(new IllegalStateError(`the libipc run holding ${storePath} closed the connection without an answer`)));
  });
  if (!reply.ok) throw new ControlRefusedError(reply.code, reply.message);
}
