// The libipc command at the limits: a low open-file limit (ulimit -n 64) — it starts, runs a daemon and services,
// and cleans up — and a daemon home on a full disk. Loading zod as a package once opened ~100 files at once and failed before any of our code ran.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canMountTmpfs, spawnNode } from '../../../test/helpers.js';
import { BIN, FIXTURES, type Result, running, tempDir } from './support.js';

function limited(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile('prlimit', ['--nofile=64', process.execPath, BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('libipc under ulimit -n 64', () => {
  it('lists, starts a daemon with services, stops them, and leaves no process', async () => {
    const env = { LIBIPC_HOME: join(tempDir(), 'home') };
    const ls = await limited(['ls'], env);
    expect(ls.code, ls.stderr).toBe(0);
    const started = await limited(['start', join(FIXTURES, 'sleeper.mjs'), '--name', 'nap', '-i', '3', '--json'], env);
    expect(started.code, started.stderr).toBe(0);
    const outcomes = JSON.parse(started.stdout) as Array<{ ok: boolean; rows: Array<{ pid: number; state: string }> }>;
    expect(outcomes.map((o) => o.ok)).toEqual([true]);
    const pids = outcomes[0]!.rows.map((r) => r.pid);
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(running(pid)).toBe(true);
    const stopped = await limited(['kill-daemon'], env);
    expect(stopped.code, stopped.stderr).toBe(0);
    for (const pid of pids) expect(running(pid)).toBe(false);
  });

  it('more services than the limit allows: those that cannot get their log files fail with a coded error saying what to do; the daemon lives on', async () => {
    const env = { LIBIPC_HOME: join(tempDir(), 'home') };
    const started = await limited(['start', join(FIXTURES, 'sleeper.mjs'), '--name', 'many', '-i', '60', '--json'], env);
    expect(started.code).toBe(1);
    const outcome = (JSON.parse(started.stdout) as Array<{ ok: boolean; code: string; message: string; rows: Array<{ state: string; reason: string | null; pid: number | null }> }>)[0]!;
    // Whichever runs out first: the log pipes (ERR_LIBIPC_SYSTEM) or the spawn's own pipes (ERR_LIBIPC_SPAWN).
    expect(outcome.ok).toBe(false);
    expect(['ERR_LIBIPC_SYSTEM', 'ERR_LIBIPC_SPAWN']).toContain(outcome.code);
    const failed = outcome.rows.filter((r) => r.state === 'failed');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.reason).toMatch(/EMFILE.*raise .*\(ulimit -n/);
    const ping = await limited(['ping'], env);
    expect(ping.code, ping.stderr).toBe(0);
    const stopped = await limited(['kill-daemon'], env);
    expect(stopped.code, stopped.stderr).toBe(0);
    for (const r of outcome.rows) if (r.pid !== null) expect(running(r.pid)).toBe(false);
  });
});

describe('libipc daemon with its home on a full disk', () => {
  it('its own log failing to write (stdout on /dev/full) never ends it', async () => {
    const env = { LIBIPC_HOME: join(tempDir(), 'home') };
    const full = openSync('/dev/full', 'w');
    const daemon = spawn(process.execPath, [BIN, 'daemon'], { env: { ...process.env, ...env }, stdio: ['ignore', full, 'pipe'] });
    closeSync(full);
    let stderr = '';
    daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(daemon, 'exit');
    try {
      // Answering means it wrote (and failed to write) its start-up lines and lived on.
      const deadline = Date.now() + 30_000;
      let ping: Result | undefined;
      while (Date.now() < deadline && daemon.exitCode === null) {
        ping = await limited(['ping'], env);
        if (ping.code === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(daemon.exitCode, stderr).toBeNull();
      expect(ping?.code, ping?.stdout).toBe(0);
      const started = await limited(['start', 'sleep', '--name', 'nap', '--', '600'], env);
      expect(started.code, started.stderr).toBe(0);
      expect((await limited(['kill-daemon'], env)).code).toBe(0);
      expect((await exited)[0]).toBe(0);
    } finally {
      daemon.kill('SIGKILL');
    }
  });

  it.skipIf(!canMountTmpfs)('lives on: answers, starts and stops services, and writes a flood of failures as a few lines', async () => {
    const child = spawnNode(join(FIXTURES, 'full-home.mjs'), [BIN], {}, [], { smallTmpfs: { size: '1m', inodes: 1000 } });
    const report = JSON.parse(await child.line('{', 90_000));
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(report).toMatchObject({ full: true, chatty: 0, ping: 0, nap: 0, kill: 0, states: ['chatty running', 'nap running'] });
    // Thousands of failed writes a second, a handful of lines (one per kind of failure and window).
    expect(report.warnings).toBeLessThan(50);
  }, 120_000);
});
