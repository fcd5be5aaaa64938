// The libipc command under a low open-file limit (ulimit -n 64): it starts, runs a daemon and services, and
// cleans up. Loading zod as a package once opened ~100 files at once and failed before any of our code ran.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
    const outcome = (JSON.parse(started.stdout) as Array<{ ok: boolean; code: string; message: string; rows: Array<{ state: string; reason: string | null }> }>)[0]!;
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
    for (const r of outcome.rows as Array<{ pid: number | null }>) if (r.pid !== null) expect(running(r.pid)).toBe(false);
  });
});
