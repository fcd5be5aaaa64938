// @libipc/cli installed without SQLite (plain npm, no compiler, Node 20): `run` keeps its services in a JSON store,
// `ps` reads it, and only an explicit `.db` store is refused, with a coded error that names the ways out.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLE, FIXTURES, cli, libipc, running, start, tempDir } from './support.js';

const dir = tempDir();
const NO_SQLITE = { NODE_OPTIONS: `--require ${join(FIXTURES, 'no-sqlite.cjs')}` };

describe('the cli without SQLite', () => {
  it('run without --store uses a private JSON store; ps reads it; Ctrl-C leaves nothing', async () => {
    const rt = join(dir, 'rt-plain');
    mkdirSync(rt);
    const env = { ...NO_SQLITE, LIBIPC_RUNTIME_DIR: rt };
    const run = start(libipc('run', EXAMPLE), { env });
    let pids: number[] = [];
    try {
      await run.waitFor('all 4 service(s) started');
      expect(readdirSync(rt).filter((f) => /^run-\d+\.store\.json$/.test(f))).toHaveLength(1);
      const ps = await cli(['ps', '--json'], env);
      expect(ps.code, ps.stderr).toBe(0);
      const rows = JSON.parse(ps.stdout) as Array<{ name: string; state: string; alive: boolean; pid: number }>;
      expect(rows.map((r) => [r.name, r.state, r.alive])).toEqual([
        ['api', 'running', true],
        ['store', 'running', true],
        ['worker.0', 'running', true],
        ['worker.1', 'running', true],
      ]);
      pids = rows.map((r) => r.pid);
    } finally {
      run.child.kill('SIGINT');
    }
    expect(await run.exited).toBe(0);
    for (const pid of pids) expect(running(pid)).toBe(false);
    expect(readdirSync(rt)).toEqual([]);
  });

  it('--store x.json keeps the services (and their history) in that file for the next run', async () => {
    const rt = join(dir, 'rt-json');
    mkdirSync(rt);
    const env = { ...NO_SQLITE, LIBIPC_RUNTIME_DIR: rt };
    const store = join(dir, 'services.json');
    const run = start(libipc('run', EXAMPLE, '--store', store), { env });
    try {
      await run.waitFor('all 4 service(s) started');
      const ps = await cli(['ps', '--json', '--store', store], env);
      expect(ps.code, ps.stderr).toBe(0);
      expect((JSON.parse(ps.stdout) as unknown[]).length).toBe(4);
    } finally {
      run.child.kill('SIGINT');
    }
    expect(await run.exited).toBe(0);
    expect(existsSync(store)).toBe(true);
    expect(existsSync(join(dir, 'services.history.jsonl'))).toBe(true);
  });

  it('--store x.db is refused with ERR_LIBIPC_UNSUPPORTED naming node:sqlite, better-sqlite3 and the JSON store', async () => {
    const rt = join(dir, 'rt-db');
    mkdirSync(rt);
    const r = await cli(['run', EXAMPLE, '--store', join(dir, 'services.db')], { ...NO_SQLITE, LIBIPC_RUNTIME_DIR: rt });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_LIBIPC_UNSUPPORTED/);
    expect(r.stderr).toMatch(/Node 22\.5/);
    expect(r.stderr).toMatch(/better-sqlite3/);
    expect(r.stderr).toMatch(/\.json/);
    expect(existsSync(join(dir, 'services.db'))).toBe(false);
  });
});
