import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, waitForExit, forceKill, ready } from '../src/index.js';
import { fixture, lineOf, node, track } from './support.js';
import { canSwitchUsers, spawnNode } from '../../../test/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'libipc-process-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('spawn', () => {
  it('runs a child and resolves exit with its code', async () => {
    const h = track(spawn('exit7', node, [fixture('exit.mjs'), '7']));
    expect(h.pid).toBeGreaterThan(0);
    expect(h.name).toBe('exit7');
    expect(h.executable).toBe(node);
    expect(await h.exit).toEqual({ reason: 'exited', exited: true, exitCode: 7, signaled: false, signal: null });
    expect(h.isAlive()).toBe(false);
  });

  it('reports a signal death as signaled', async () => {
    const h = track(spawn('victim', node, [fixture('serve.mjs')]));
    expect(h.isAlive()).toBe(true);
    expect(forceKill(h)).toBe(true);
    expect(await h.exit).toEqual({ reason: 'signaled', exited: false, exitCode: null, signaled: true, signal: 'SIGKILL' });
    expect(forceKill(h)).toBe(false);
  });

  it('finds executables on PATH and runs /bin/sh scripts', async () => {
    const h = track(spawn('sh', 'sh', ['-c', 'exit 4']));
    expect(h.executable).toMatch(/\/sh$/);
    expect((await h.exit).exitCode).toBe(4);
  });

  it('uses the PATH of the env option', async () => {
    const bin = join(dir, 'bin');
    rmSync(bin, { recursive: true, force: true });
    writeFileSync(join(dir, 'my-tool'), '#!/bin/sh\nexit 5\n');
    chmodSync(join(dir, 'my-tool'), 0o755);
    const h = track(spawn('tool', 'my-tool', [], { env: { PATH: `${dir}:/usr/bin:/bin` } }));
    expect(h.executable).toBe(join(dir, 'my-tool'));
    expect((await h.exit).exitCode).toBe(5);
  });

  it('throws ERR_LIBIPC_SPAWN synchronously for a missing executable, naming it', () => {
    expect(() => spawn('x', 'libipc-no-such-program')).toThrowError(
      expect.objectContaining({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringContaining('libipc-no-such-program') }),
    );
    expect(() => spawn('x', join(dir, 'absent'))).toThrowError(
      expect.objectContaining({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringContaining(join(dir, 'absent')) }),
    );
  });

  it('throws ERR_LIBIPC_SPAWN for a file that is not executable, and for a directory', () => {
    const file = join(dir, 'not-exec.sh');
    writeFileSync(file, '#!/bin/sh\nexit 0\n');
    chmodSync(file, 0o644);
    expect(() => spawn('x', file)).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringContaining('not executable') }));
    expect(() => spawn('x', 'not-exec.sh', [], { env: { PATH: dir } })).toThrowError(
      expect.objectContaining({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringContaining(file) }),
    );
    expect(() => spawn('x', dir)).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringContaining('directory') }));
    expect(() => spawn('x', node, [], { cwd: join(dir, 'nope') })).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_SPAWN' }));
  });

  it('refuses bad input with stable codes', () => {
    expect(() => spawn('', node)).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }));
    expect(() => spawn('a/b', node)).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }));
    expect(() => spawn('x', '')).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => spawn('x', node, [1 as unknown as string])).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => spawn('x', node, [], { env: { A: 1 as unknown as string } })).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => spawn('x', node, [], { stdio: 'tty' as 'pipe' })).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
  });

  it('gives every child LIBIPC_READY_FD, a pipe, plus the env option on top of ours', async () => {
    const h = track(spawn('env', node, [fixture('env.mjs')], { stdio: 'pipe', env: { EXTRA: 'yes' } }));
    expect(JSON.parse(await lineOf(h, '{'))).toEqual({ fd: '3', pipe: true, extra: 'yes' });
  });

  it('waitForExit resolves with reason timeout while the child runs, and with the status once it exits', async () => {
    const h = track(spawn('sleeper', node, [fixture('serve.mjs')]));
    const st = await waitForExit(h, 50);
    expect(st).toEqual({ reason: 'timeout', exited: false, exitCode: null, signaled: false, signal: null });
    forceKill(h);
    const t0 = Date.now();
    expect((await waitForExit(h, 10_000)).signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(() => waitForExit(h, -1)).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => waitForExit(h, Number.NaN)).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
  });

  it('ready() is a no-op when LIBIPC_READY_FD is unset', () => {
    const saved = process.env.LIBIPC_READY_FD;
    delete process.env.LIBIPC_READY_FD;
    expect(() => ready()).not.toThrow();
    if (saved !== undefined) process.env.LIBIPC_READY_FD = saved;
  });

  it('does not keep the parent alive through the ready pipe after the child exits', async () => {
    // The child's own grandchild would hold fd 3 open: the handle still settles and nothing leaks.
    const h = track(spawn('sh-tree', 'sh', ['-c', 'sleep 0.1 & exit 0']));
    expect((await h.exit).exitCode).toBe(0);
  });

  it.skipIf(!canSwitchUsers)('a working directory this user cannot enter: a SpawnError naming it, for a given cwd and for its own', async () => {
    // A folder only root can enter; the fixture runs as uid 65534.
    const locked = mkdtempSync(join(tmpdir(), 'libipc-locked-'));
    try {
      const given = spawnNode(fixture('spawn-in.mjs'), [locked], {}, [], { asUid: 65534 });
      const line = await given.line((l) => l.startsWith('{') || l === 'spawned');
      await given.exited;
      expect(JSON.parse(line)).toEqual({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringContaining(`(uid 65534) cannot enter the working directory ${locked}; pass a cwd`) });
      const own = spawnNode(fixture('spawn-in.mjs'), [], {}, [], { asUid: 65534, cwd: locked });
      const ownLine = await own.line((l) => l.startsWith('{') || l === 'spawned');
      await own.exited;
      expect(JSON.parse(ownLine)).toEqual({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringContaining(`cannot enter the working directory ${locked} (this process's own, the default)`) });
    } finally {
      rmSync(locked, { recursive: true, force: true });
    }
  });

  it('out of file descriptors: a SpawnError saying so and what to do, not a TypeError', async () => {
    const child = spawnNode(fixture('spawn-out-of-fds.mjs'), [], {}, [], { maxFds: 40 });
    const line = await child.line((l) => l.startsWith('{') || l === 'spawned');
    await child.exited;
    expect(JSON.parse(line)).toEqual({ code: 'ERR_LIBIPC_SPAWN', message: expect.stringMatching(/out of file descriptors \(EMFILE\/ENFILE\); raise/) });
  });
});
