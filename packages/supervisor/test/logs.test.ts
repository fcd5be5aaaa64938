import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, closeSync, constants, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canSwitchUsers, spawnNode } from '../../../test/helpers.js';
import { RotatingLogFile } from '../src/log-file.js';
import { LogPipe } from '../src/log-pipe.js';
import { fixture, manager, svc, tempDir, until } from './support.js';

const STAMPED = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

describe('logs', () => {
  it('drops the CR of CRLF line ends, and marks what an adopted pipe held as written while nobody read it', () => {
    const dir = tempDir();
    const fifo = join(dir, 'p.fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    // Our own writer end, as a child's stdout: written to before any manager reads (an earlier one died).
    const writer = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      writeSync(writer, 'before one\r\nbefore two\n');
      const file = join(dir, 'p.log');
      const pipe = LogPipe.fromPath(fifo, fifo, new RotatingLogFile(file, 1 << 20, 1), '2020-01-01T00:00:00.000Z');
      writeSync(writer, 'after\r\nlast partial\r');
      pipe.close(true);
      const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.slice(25));
      expect(lines).toEqual([
        '[libipc] the 2 line(s) below were written after 2020-01-01T00:00:00.000Z while no manager was reading; they are stamped with the time they were read',
        'before one',
        'before two',
        'after',
        'last partial',
      ]);
      for (const l of readFileSync(file, 'utf8').split('\n').filter(Boolean)) expect(l).toMatch(STAMPED);
    } finally {
      closeSync(writer);
    }
  });

  it('a full disk: one write-error for a run of failed writes, then a line saying how many were dropped once writing works again', async () => {
    const dir = tempDir();
    const fifo = join(dir, 'p.fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    class FullDisk extends RotatingLogFile {
      full = true;
      override write(text: string): void {
        if (this.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        super.write(text);
      }
    }
    const file = new FullDisk(join(dir, 'p.log'), 1 << 20, 1);
    const writer = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      writeSync(writer, 'one\ntwo\n');
      const errors: unknown[] = [];
      const pipe = LogPipe.fromPath(fifo, fifo, file);
      pipe.on('write-error', (err) => errors.push(err));
      // The backlog (a marker line and two lines) failed before we listened; the next failure must stay silent.
      const third = once(pipe, 'line');
      writeSync(writer, 'three\n');
      await third;
      expect(errors).toEqual([]);
      file.full = false;
      const fourth = once(pipe, 'line');
      writeSync(writer, 'four\n');
      await fourth;
      pipe.close(true);
      const lines = readFileSync(join(dir, 'p.log'), 'utf8').split('\n').filter(Boolean).map((l) => l.slice(25));
      expect(lines).toEqual(['[libipc] 4 line(s) were dropped: the log file could not be written (ENOSPC)', 'four']);
    } finally {
      closeSync(writer);
    }
  });

  // As root, also as uid 65534: a Manager of an ordinary user makes its log folders and FIFOs itself.
  it.each([{ who: 'this user', uid: undefined as number | undefined }, ...(canSwitchUsers ? [{ who: 'uid 65534', uid: 65534 }] : [])])('a Manager run as $who writes, restarts and reads back its log files', async ({ uid }) => {
    const dir = tempDir();
    if (uid !== undefined) chownSync(dir, uid, uid);
    const host = spawnNode(fixture('logs-user.mjs'), [dir], {}, [], { asUid: uid });
    const line = await host.line('RESULT ', 60_000);
    expect((await host.exited).code).toBe(0);
    const r = JSON.parse(line.slice('RESULT '.length)) as { uid: number; lines: string[]; restarts: number; state: string };
    expect(r.uid).toBe(uid ?? process.getuid!());
    expect(r).toMatchObject({ restarts: 1, state: 'running' });
    // Each start printed its lines: two starts, three numbered lines each.
    expect(r.lines.filter((l) => / line 000002 x/.test(l))).toHaveLength(2);
    expect(readdirSync(join(dir, 'logs')).sort()).toEqual(['talk.stderr.log', 'talk.stdout.log']);
  });

  it('writes each stream to its own file, lines timestamped, rotated by size', async () => {
    const dir = tempDir();
    const m = manager();
    const logs = { dir, maxBytes: 4096, keep: 2 };
    // 400 lines of ~40 bytes (+ the timestamp): several rotations.
    await m.start(svc('chatty', { flags: ['--lines', '400', '--width', '40', '--ready'], logs }));
    await until(m, () => true, 'nothing');
    const out = join(dir, 'chatty.stdout.log');
    // Everything the child wrote before READY was in the pipe by then; reading drains it.
    const last = await m.logs('chatty', { lines: 5, stream: 'stdout' });
    expect(last).toHaveLength(5);
    for (const l of last) expect(l).toMatch(STAMPED);
    expect(last.at(-1)).toMatch(/up chatty\.0 pid \d+$/);
    expect(last.at(-2)).toMatch(/line 000399 x+$/);
    const files = readdirSync(dir).filter((f) => f.startsWith('chatty.stdout.log')).sort();
    expect(files).toEqual(['chatty.stdout.log', 'chatty.stdout.log.1', 'chatty.stdout.log.2']);
    for (const f of files) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(4096);
    // The rotated files hold the lines just before the current file's, in order.
    const older = readFileSync(join(dir, 'chatty.stdout.log.1'), 'utf8').trim().split('\n');
    const current = readFileSync(out, 'utf8').trim().split('\n');
    const num = (l: string) => Number(/line (\d+)/.exec(l)?.[1]);
    expect(num(older.at(-1)!) + 1).toBe(num(current[0]!));
    expect(await m.logs('chatty', { lines: 1, stream: 'stderr' })).toEqual([expect.stringMatching(/ stderr line$/)]);
    // Both streams, merged in time order.
    const both = await m.logs('chatty', { lines: 1000 });
    expect(both.some((l) => l.endsWith('stderr line'))).toBe(true);
    expect(both.length).toBeGreaterThan(100);
    await m.shutdown();
    // The pipes are gone with the service; the files stay.
    expect(existsSync(join(dir, '.pipes'))).toBe(false);
    expect(existsSync(out)).toBe(true);
  });

  it('a log folder that cannot be made fails the service with ERR_LIBIPC_SYSTEM (no retry loop)', async () => {
    const m = manager();
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    for (const dir of ['/proc/self/nope', join(file, 'logs')]) {
      await expect(m.start(svc('nolog', { logs: { dir } }))).rejects.toMatchObject({ code: 'ERR_LIBIPC_SYSTEM' });
      expect(m.status('nolog')).toMatchObject({ state: 'failed', reason: expect.stringContaining(dir) });
    }
  });

  it('follow yields new lines as they are written, across restarts', async () => {
    const dir = tempDir();
    const m = manager();
    await m.start(svc('f', { flags: ['--usr1', '--ready'], logs: { dir } }));
    const reader = m.logs('f', { follow: true, lines: 1, stream: 'stdout' });
    const it = reader[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatch(/up f\.0/);
    const pid = m.status('f').pid;
    process.kill(pid!, 'SIGUSR1');
    expect((await it.next()).value).toMatch(new RegExp(`usr1 ${pid}$`));
    await m.restart('f');
    expect((await it.next()).value).toMatch(new RegExp(`up f\\.0 pid ${m.status('f').pid}$`));
    reader.close();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });
});
