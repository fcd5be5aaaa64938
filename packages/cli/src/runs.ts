import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, selfIdentity } from '@libipc/shm';

/** What a running `libipc run` tells other commands (ps, logs) about itself: a small JSON file per run. */
export interface RunRecord {
  pid: number;
  /** With pid, the run's identity (clock ticks since boot, as a decimal string). */
  startTime: string;
  config: string;
  /** The SQLite store it keeps its services in (a private one in the runtime folder without --store). */
  store: string;
  /** True when the store is private to this run and removed when it ends. */
  ephemeral: boolean;
  startedAt: number;
}

/** This user's folder for live runs: $LIBIPC_RUNTIME_DIR, else $XDG_RUNTIME_DIR/libipc, else <tmp>/libipc-<uid>. */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env, create = true): string {
  const dir = env.LIBIPC_RUNTIME_DIR || (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'libipc') : join(tmpdir(), `libipc-${process.getuid?.() ?? 0}`));
  if (create) mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export function recordPath(dir: string, pid: number): string {
  return join(dir, `run-${pid}.json`);
}

export function writeRunRecord(dir: string, rec: RunRecord): void {
  writeFileSync(recordPath(dir, rec.pid), `${JSON.stringify(rec)}\n`, { mode: 0o600 });
}

export function removeRunRecord(dir: string, pid: number): void {
  rmSync(recordPath(dir, pid), { force: true });
}

/** Every run that left a record, with whether it still runs (by identity). */
export function listRuns(env: NodeJS.ProcessEnv = process.env): Array<RunRecord & { alive: boolean }> {
  const dir = runtimeDir(env, false);
  const out: Array<RunRecord & { alive: boolean }> = [];
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return out; // no run ever started here
  }
  for (const f of files) {
    if (!/^run-\d+\.json$/.test(f)) continue;
    try {
      const rec = JSON.parse(readFileSync(join(dir, f), 'utf8')) as RunRecord;
      if (typeof rec.pid !== 'number' || typeof rec.store !== 'string') continue;
      out.push({ ...rec, alive: isAlive(rec.pid, BigInt(rec.startTime)) });
    } catch {
      // being written, or not ours
    }
  }
  return out.sort((a, b) => a.startedAt - b.startedAt);
}

export function selfRecord(config: string, store: string, ephemeral: boolean): RunRecord {
  const me = selfIdentity();
  return { pid: me.pid, startTime: String(me.startTime), config, store, ephemeral, startedAt: Date.now() };
}
