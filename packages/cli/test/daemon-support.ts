// The daemon in tests: a home per test group that is cleaned up (kill-daemon, then SIGKILL of anything left), its
// `ps` rows, and its live daemon processes.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { BIN, cli, running } from './support.js';

export interface Row {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
  cpu: number | null;
  rssBytes: number | null;
  manager: { pid: number; daemon?: boolean } | null;
}

/** A home of its own per test group, with its runtime folder; the sweep off unless a test wants it. */
export function daemonEnv(sweep = false, after: (fn: () => Promise<void>) => void = afterAll): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'libipc-daemon-'));
  const env = { LIBIPC_HOME: join(dir, 'home'), LIBIPC_RUNTIME_DIR: join(dir, 'rt'), LIBIPC_SWEEP_MS: sweep ? '60000' : '0' };
  // Nothing left behind: kill-daemon stops services and daemon; SIGKILL anything that survived it; then the folder.
  after(async () => {
    const r = await cli(['kill-daemon'], env);
    for (const pid of daemonsOf(env.LIBIPC_HOME)) kill(pid);
    for (const pid of seen.get(env.LIBIPC_HOME) ?? []) kill(-pid), kill(pid);
    rmSync(dir, { recursive: true, force: true });
    expect(r.code, r.stderr).toBe(0);
  });
  return env;
}

const seen = new Map<string, Set<number>>();
function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

export async function ps(env: Record<string, string>): Promise<Row[]> {
  const r = await cli(['ps', '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  const rows = (JSON.parse(r.stdout) as Row[]).filter((x) => x.manager?.daemon);
  const set = seen.get(env.LIBIPC_HOME!) ?? new Set<number>();
  for (const x of rows) if (x.pid !== null) set.add(x.pid);
  seen.set(env.LIBIPC_HOME!, set);
  return rows;
}

export const byName = (rows: Row[]) => Object.fromEntries(rows.map((r) => [r.name, r]));

/** Live `libipc daemon` processes of a home (from /proc: their command line and environment). */
export function daemonsOf(home: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd[1] !== BIN || cmd[2] !== 'daemon') continue;
      if (!readFileSync(`/proc/${d}/environ`, 'utf8').split('\0').includes(`LIBIPC_HOME=${home}`)) continue;
      if (running(Number(d))) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}


export const daemonPid = (env: Record<string, string>) => (JSON.parse(readFileSync(join(env.LIBIPC_HOME!, 'daemon.pid'), 'utf8')) as { pid: number }).pid;
