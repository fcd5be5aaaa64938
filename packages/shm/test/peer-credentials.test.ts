// peerCredentials: the kernel's record of who connected to a Unix socket (SO_PEERCRED), for control sockets
// that must refuse other users.
import { chmodSync, closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { peerCredentials } from '../src/index.js';
import { canSwitchUsers, spawnNode } from '../../../test/helpers.js';
import { fixture } from './fixtures.js';

let server: Server | undefined;
let dir: string | undefined;
afterEach(async () => {
  if (server) await new Promise((r) => server!.close(r));
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A server on a socket anyone may connect to; resolves each connection's credentials as it comes. */
async function listen(): Promise<{ path: string; next: () => Promise<{ creds: ReturnType<typeof peerCredentials>; socket: Socket }> }> {
  dir = mkdtempSync(join(tmpdir(), 'libipc-peer-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'ctl.sock');
  const queue: Array<(v: { creds: ReturnType<typeof peerCredentials>; socket: Socket }) => void> = [];
  server = createServer((socket) => queue.shift()?.({ creds: peerCredentials(socket), socket }));
  await new Promise<void>((r) => server!.listen(path, r));
  chmodSync(path, 0o777);
  return { path, next: () => new Promise((resolve) => queue.push(resolve)) };
}

describe('peerCredentials', () => {
  it('names the pid and uid of the process that connected', async () => {
    const { path, next } = await listen();
    const accepted = next();
    const child = spawnNode(fixture('connect.mjs'), [path]);
    const { creds, socket } = await accepted;
    expect(creds).toEqual({ pid: child.child.pid, uid: process.getuid!(), gid: process.getgid!() });
    socket.destroy();
    expect((await child.exited).code).toBe(0);
  });

  it.skipIf(!canSwitchUsers)('sees another uid as that uid (it cannot pass itself off as the server’s user)', async () => {
    const { path, next } = await listen();
    const accepted = next();
    const child = spawnNode(fixture('connect.mjs'), [path], {}, [], { asUid: 65534 });
    const { creds, socket } = await accepted;
    expect(creds.uid).toBe(65534);
    expect(creds.gid).toBe(65534);
    socket.destroy();
    expect((await child.exited).code).toBe(0);
  });

  it.each([[null], [{}], [42], [{ _handle: { fd: -1 } }]])('refuses %j with ERR_LIBIPC_INVALID_ARGUMENT', (bad) => {
    expect(() => peerCredentials(bad as never)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
  });

  it('an fd that is not a socket is ERR_LIBIPC_SYSTEM (ENOTSOCK), not a crash', () => {
    const fd = openSync(process.execPath, 'r');
    try {
      expect(() => peerCredentials({ _handle: { fd } } as never)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_SYSTEM', errno: 'ENOTSOCK' }));
    } finally {
      closeSync(fd);
    }
  });
});
