// listenTcp: a listening socket this process owns but never accepts from (a supervisor hands it to children).
import { closeSync, fstatSync, openSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/helpers.js';
import { closeFd, listenTcp } from '../src/index.js';

const opened: number[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const fd of opened.splice(0)) {
    try {
      closeFd(fd);
    } catch {
      // closed by the test
    }
  }
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});


/** 'connected' when the kernel completed the handshake (a queued connection counts), else the error code. */
function tryConnect(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const s: Socket = connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

describe('listenTcp', () => {
  it('listens (IPv4 through "::" too) without accepting, and closeFd stops it', async () => {
    const port = await freePort();
    const fd = listenTcp('::', port);
    opened.push(fd);
    expect(fd).toBeGreaterThan(2);
    // Nobody accepts, but the kernel queues the connection: the handshake completes.
    expect(await tryConnect(port)).toBe('connected');
    expect(await tryConnect(port, '::1')).toBe('connected');
    closeFd(fd);
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
  });

  it('a second listener on the same port shares it (SO_REUSEPORT), as a restarted supervisor needs', async () => {
    const port = await freePort();
    const a = listenTcp('127.0.0.1', port);
    opened.push(a);
    const b = listenTcp('127.0.0.1', port);
    opened.push(b);
    expect(b).not.toBe(a);
  });

  it.each([
    ['port 0', () => listenTcp('::', 0), 'ERR_LIBIPC_INVALID_ARGUMENT', /port must be a whole number from 1 to 65535/],
    ['port 70000', () => listenTcp('::', 70_000), 'ERR_LIBIPC_INVALID_ARGUMENT', /port must be/],
    ['port 1.5', () => listenTcp('::', 1.5), 'ERR_LIBIPC_INVALID_ARGUMENT', /port must be/],
    ['port "80"', () => listenTcp('::', '80' as unknown as number), 'ERR_LIBIPC_INVALID_ARGUMENT', /port must be/],
    ['a host name', () => listenTcp('localhost', 4000), 'ERR_LIBIPC_INVALID_ARGUMENT', /numeric IPv4 or IPv6 address/],
    ['an empty host', () => listenTcp('', 4000), 'ERR_LIBIPC_INVALID_ARGUMENT', /host must be/],
    ['backlog 0', () => listenTcp('::', 4000, 0), 'ERR_LIBIPC_INVALID_ARGUMENT', /backlog must be/],
    ['closeFd(-1)', () => closeFd(-1), 'ERR_LIBIPC_INVALID_ARGUMENT', /fd must be/],
  ])('%s → coded error', (_what, call, code, message) => {
    const err = (() => {
      try {
        call();
      } catch (e) {
        return e as Error & { code: string };
      }
      throw new Error('no error thrown');
    })();
    expect(err.code.startsWith(code)).toBe(true);
    expect(err.message).toMatch(message);
  });

  it('a port in use by a plain listener → ERR_LIBIPC_SYSTEM with errno EADDRINUSE and what to do', async () => {
    const s = createServer();
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address() as { port: number };
    let err: (Error & { code?: string; errno?: string; syscall?: string }) | undefined;
    try {
      opened.push(listenTcp('127.0.0.1', port));
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.code).toBe('ERR_LIBIPC_SYSTEM');
    expect(err?.errno).toBe('EADDRINUSE');
    expect(err?.syscall).toBe('bind');
    expect(err?.message).toMatch(/another process listens on port \d+.*pick another port/);
  });

  it('closeFd of an fd listenTcp did not open → ERR_LIBIPC_INVALID_ARGUMENT, and it stays open', () => {
    const fd = openSync('/dev/null', 'r');
    try {
      expect(() => closeFd(fd)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringMatching(/not a socket listenTcp opened/) }));
      expect(() => fstatSync(fd)).not.toThrow();
    } finally {
      closeSync(fd);
    }
  });

  it('closeFd twice → ERR_LIBIPC_INVALID_ARGUMENT (never a close of a number reused meanwhile)', async () => {
    const fd = listenTcp('127.0.0.1', await freePort());
    closeFd(fd);
    expect(() => closeFd(fd)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringMatching(/closed already/) }));
  });
});
