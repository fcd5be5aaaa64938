// spawn's inheritFds: open fds of the parent handed to the child as fds 4, 5, … (after the READY pipe).
import { connect } from 'node:net';
import { closeFd, listenTcp } from '@libipc/shm';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagedProcess, spawn } from '../src/index.js';
import { freePort } from '../../../test/helpers.js';
import { fixture, lineOf, node, track, trackManaged } from './support.js';

const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeFd(fd);
});


function ask(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = connect({ port, host: '127.0.0.1' });
    s.on('data', (d) => (got += d));
    s.once('end', () => resolve(got.trim()));
    s.once('error', reject);
  });
}

describe('inheritFds', () => {
  it('a child accepts on a listening socket the parent opened; the socket outlives the child', async () => {
    const port = await freePort();
    const fd = listenTcp('127.0.0.1', port);
    fds.push(fd);
    const h = track(spawn('serve-fd', node, [fixture('serve-fd.mjs')], { stdio: 'pipe', inheritFds: [fd] }));
    await lineOf(h, 'LISTENING');
    expect(await ask(port)).toBe(`pid ${h.pid}`);
    process.kill(h.pid, 'SIGTERM');
    await h.exit;
    // Our fd is still open and listening: a connection made now waits in its queue for the next child.
    const pending = ask(port);
    const next = track(spawn('serve-fd', node, [fixture('serve-fd.mjs')], { stdio: 'pipe', inheritFds: [fd] }));
    expect(await pending).toBe(`pid ${next.pid}`);
  });

  it('ManagedProcess passes them to every start', async () => {
    const port = await freePort();
    const fd = listenTcp('127.0.0.1', port);
    fds.push(fd);
    const mp = trackManaged(new ManagedProcess({ name: 'serve-fd', command: node, args: [fixture('serve-fd.mjs')], stdio: 'ignore', inheritFds: [fd] }));
    await mp.start();
    expect(await ask(port)).toBe(`pid ${mp.pid}`);
  });

  it.each([
    [[-1], 'ERR_LIBIPC_INVALID_ARGUMENT', /inheritFds/],
    [[1.5], 'ERR_LIBIPC_INVALID_ARGUMENT', /inheritFds/],
    ['4', 'ERR_LIBIPC_INVALID_ARGUMENT', /inheritFds/],
    [Array.from({ length: 65 }, () => 1), 'ERR_LIBIPC_INVALID_ARGUMENT', /at most 64/],
    [[987_654], 'ERR_LIBIPC_SPAWN', /fd 987654 is not open/],
  ])('inheritFds %j → %s', (inheritFds, code, message) => {
    expect(() => spawn('x', node, ['-e', ''], { inheritFds: inheritFds as number[] })).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });
});
