import { chmodSync, lstatSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { ExistsError, LibipcError } from '@libipc/shm';
import type { Manager } from '@libipc/supervisor';
import { z } from 'zod';
import { runtimeDir } from '../runs.js';
import { parseJsonLine } from '../json-line.js';
import { ACTIONS, type ControlReply, type ControlRequest, HIDDEN_PREFIX, controlPaths } from './control-path.js';

const MAX_LINE = 4096;
const MAX_CLIENTS = 16;

const requestSchema = z.strictObject({
  id: z.number().int().min(0).max(2 ** 31),
  action: z.enum(ACTIONS),
  name: z.string().regex(/^[A-Za-z0-9._-]{1,63}$/),
  store: z.string().min(1).max(4096),
});

/**
 * The control socket of a `libipc run`: a Unix socket beside its store, mode 0600 (only this user connects),
 * through which `libipc dashboard` asks the run's Manager to restart, stop or start a service. Each request is
 * one JSON line; the answer comes once the Manager has done it (or failed).
 */
export class ControlServer {
  private readonly clients = new Set<Socket>();

  private constructor(
    readonly path: string,
    private readonly server: Server,
  ) {}

  /** Listens for `manager`, which holds `storePath`. `onRequest` hears of each request (to show it). */
  static async listen(storePath: string, manager: Manager, opts: { env?: NodeJS.ProcessEnv; onRequest?: (r: ControlRequest) => void } = {}): Promise<ControlServer> {
    const path = controlPaths(storePath, opts.env)[0]!;
    if (dirname(path) !== dirname(storePath)) runtimeDir(opts.env ?? process.env, true);
    removeStaleSocket(path);
    const server = createServer();
    const control = new ControlServer(path, server);
    server.maxConnections = MAX_CLIENTS;
    server.on('connection', (socket) => control.serve(socket, storePath, manager, opts.onRequest));
    // Bound inside a fresh 0700 folder, made 0600, then renamed into place: no moment in which another user could
    // connect, and the process umask is never touched (other code creating files meanwhile keeps its modes).
    const hidden = mkdtempSync(join(dirname(path), HIDDEN_PREFIX));
    const temp = join(hidden, 's');
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(temp, () => {
          server.off('error', reject);
          resolve();
        });
      });
      chmodSync(temp, 0o600);
      renameSync(temp, path);
    } catch (err) {
      server.close();
      throw err;
    } finally {
      rmSync(hidden, { recursive: true, force: true });
    }
    server.unref();
    return control;
  }

  private serve(socket: Socket, storePath: string, manager: Manager, onRequest?: (r: ControlRequest) => void): void {
    this.clients.add(socket);
    socket.setEncoding('utf8');
    let buffered = '';
    const reply = (r: ControlReply) => socket.writable && socket.write(`${JSON.stringify(r)}\n`);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_LINE && !buffered.includes('\n')) {
        socket.destroy();
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const req = parse(line);
        if (!req.ok) {
          reply({ id: req.id, ok: false, code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: req.message });
          continue;
        }
        const r = req.request;
        if (r.store !== storePath) {
          reply({ id: r.id, ok: false, code: 'ERR_LIBIPC_NOT_FOUND', message: `this libipc run holds ${storePath}, not ${r.store}` });
          continue;
        }
        onRequest?.(r);
        manager[r.action](r.name).then(
          () => reply({ id: r.id, ok: true }),
          (err: unknown) =>
            reply({
              id: r.id,
              ok: false,
              code: err instanceof LibipcError ? err.code : 'ERR_LIBIPC_SYSTEM',
              message: err instanceof Error ? err.message : String(err),
            }),
        );
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.clients.delete(socket));
  }

  /** Stops listening, drops the connections and removes the socket file. */
  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}

function parse(line: string): { ok: true; request: ControlRequest } | { ok: false; id: number; message: string } {
  return parseJsonLine(line, requestSchema) as { ok: true; request: ControlRequest } | { ok: false; id: number; message: string };
}

/** A socket left by a run that died: this run holds the store now, so the name is ours. Anything else is left alone. */
function removeStaleSocket(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new ExistsError(`${path} exists and is not a socket; move it away so 'libipc run' can take dashboard requests`);
  rmSync(path, { force: true });
}
