// `libipc run` of the example: a live table under a pseudo-terminal, restarts, Ctrl-C in reverse dependency
// order leaving nothing behind, and --store: a second run after a crash adopts instead of starting twice.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliUser, EXAMPLE, FIXTURES, cli, cliUsers, libipc, running, start, tempDir } from './support.js';

interface PsRow {
  name: string;
  state: string;
  pid: number | null;
  alive: boolean;
  restarts: number;
  manager: { pid: number; alive: boolean } | null;
}

// Every service pid a test saw: killed after the file's tests, should a failed test have left one running.
const seen = new Set<number>();
afterAll(() => {
  for (const pid of seen) if (running(pid)) process.kill(pid, 'SIGKILL');
});

async function ps(env: Record<string, string>, ...args: string[]): Promise<PsRow[]> {
  return psAs(undefined, env, ...args);
}

async function psAs(user: CliUser | undefined, env: Record<string, string>, ...args: string[]): Promise<PsRow[]> {
  const r = user ? await user.cli(['ps', '--json', ...args], env) : await cli(['ps', '--json', ...args], env);
  expect(r.code, r.stderr).toBe(0);
  const rows = JSON.parse(r.stdout) as PsRow[];
  for (const row of rows) if (row.pid !== null) seen.add(row.pid);
  return rows;
}

const dir = tempDir();

const users = cliUsers();

describe.each(users)('libipc run as $label', (user) => {
  it('shows a live table on a terminal, restarts a killed service, and Ctrl-C stops everything dependents first', async () => {
    const env = user.env;
    const rt = env.LIBIPC_RUNTIME_DIR!;
    const run = start(user.argv('run', user.example), { pty: true, env, cwd: user.home });
    const pids = new Set<number>();
    try {
      await run.waitFor('all 4 service(s) started');
      expect(run.output()).toMatch(/NAME\s+STATE\s+PID\s+RESTARTS\s+UPTIME/);
      expect(run.output()).toMatch(/worker\.1\s+running/);
      const rows = await psAs(user, {});
      expect(rows.map((r) => r.name)).toEqual(['api', 'store', 'worker.0', 'worker.1']);
      for (const r of rows) {
        expect(r).toMatchObject({ state: 'running', alive: true });
        pids.add(r.pid!);
      }
      const victim = rows.find((r) => r.name === 'worker.0')!.pid!;
      process.kill(victim, 'SIGKILL');
      await run.waitFor(/worker\.0 restarting/);
      await run.waitFor(new RegExp(`worker\\.0 running \\(pid (?!${victim}\\))\\d+\\)`));
      const again = (await psAs(user, {})).find((r) => r.name === 'worker.0')!;
      expect(again).toMatchObject({ state: 'running', alive: true, restarts: 1 });
      expect(again.pid).not.toBe(victim);
      pids.add(again.pid!);
      // The logs command finds the run's services by itself.
      const logs = await user.cli(['logs', 'store', '--lines', '5']);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toMatch(/store ready/);
    } finally {
      run.write('\x03'); // Ctrl-C on the terminal: SIGINT to its foreground process group
    }
    await run.waitFor('everything stopped cleanly');
    expect(await run.exited).toBe(0);
    const out = run.output();
    const at = (name: string) => out.search(new RegExp(`\\d\\d:\\d\\d:\\d\\d ${name.replace('.', '\\.')} stopped`));
    for (const n of ['worker.0', 'worker.1', 'api', 'store']) expect(at(n), `${n} stopped`).toBeGreaterThan(0);
    expect(at('worker.0')).toBeLessThan(at('api'));
    expect(at('worker.1')).toBeLessThan(at('api'));
    expect(at('api')).toBeLessThan(at('store'));
    for (const pid of pids) expect(running(pid), `pid ${pid}`).toBe(false);
    expect(readdirSync(rt)).toEqual([]); // no record, private store or logs left
  });

  it('with --store, runs every service with its log files beside the store', async () => {
    const env = user.env;
    const store = join(user.home, 'services.json');
    const run = start(user.argv('run', user.example, '--store', store), { env, cwd: user.home });
    try {
      await run.waitFor('all 4 service(s) started');
      const rows = await psAs(user, {}, '--store', store);
      expect(rows.map((r) => [r.name, r.state])).toEqual([['api', 'running'], ['store', 'running'], ['worker.0', 'running'], ['worker.1', 'running']]);
      const logs = await user.cli(['logs', 'worker.1', '--store', store, '--lines', '5']);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toMatch(/worker 1 started/);
      // No name, or a glob: every service's lines, labelled; --err: stderr only.
      const all = await user.cli(['logs', '--store', store]);
      expect(all.code, all.stderr).toBe(0);
      expect(all.stdout).toMatch(/^store \| .*store ready/m);
      expect(all.stdout).toMatch(/^worker\.1 \| .*worker 1 started/m);
      const glob = await user.cli(['logs', 'worker.*', '--store', store]);
      expect(glob.stdout).toMatch(/^worker\.0 \| /m);
      expect(glob.stdout).not.toMatch(/^store \| /m);
      const err = await user.cli(['logs', '*', '--err', '--store', store]);
      expect(err.code, err.stderr).toBe(0);
      expect(err.stdout).not.toMatch(/store ready|started/);
    } finally {
      run.child.kill('SIGINT');
    }
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('everything stopped cleanly');
  });
});

describe('libipc run', () => {
  it('with --store, a run started after the first was SIGKILLed adopts its services instead of starting them twice', async () => {
    const rt = join(dir, 'rt-store');
    mkdirSync(rt);
    const env = { LIBIPC_RUNTIME_DIR: rt };
    const store = join(dir, 'services.db');
    const first = start(libipc('run', EXAMPLE, '--store', store), { env });
    await first.waitFor('all 4 service(s) started');
    expect(first.output()).toMatch(/store\s+running \(pid \d+\)/); // plain lines when not on a terminal
    const before = await ps(env, '--store', store);
    const manager = before[0]!.manager!;
    expect(manager.alive).toBe(true);
    process.kill(manager.pid, 'SIGKILL');
    const orphaned = await ps(env, '--store', store);
    expect(orphaned.every((r) => r.alive && r.manager?.alive === false)).toBe(true);
    const table = await cli(['ps', '--store', store], env);
    expect(table.stdout).toMatch(/is dead/);
    // Still running, but no run manages them: shown as orphaned, with what can be done.
    expect(table.stdout).toMatch(/worker\.0\s+orphaned\s+\d+ .*no run manages it \(kill \d+ ends it\)/);
    expect(table.stdout).not.toMatch(/\srunning\s/);
    const json = JSON.parse((await cli(['ps', '--json', '--store', store], env)).stdout) as Array<{ shownState: string; orphaned: boolean }>;
    expect(json.every((r) => r.shownState === 'orphaned' && r.orphaned)).toBe(true);

    const second = start(libipc('run', EXAMPLE, '--store', store), { env });
    try {
      await second.waitFor('all 4 service(s) started');
      for (const n of ['store', 'api', 'worker.0', 'worker.1']) expect(second.output()).toMatch(new RegExp(`${n.replace('.', '\\.')}\\s+adopted pid`));
      const after = await ps(env, '--store', store);
      expect(after.map((r) => [r.name, r.pid])).toEqual(before.map((r) => [r.name, r.pid]));
      const logs = await cli(['logs', 'worker', '--store', store, '--lines', '50'], env);
      expect(logs.stdout).toMatch(/worker\.\d \| .*worker \d started/);
    } finally {
      second.child.kill('SIGINT');
    }
    expect(await second.exited).toBe(0);
    expect(second.output()).toContain('everything stopped cleanly');
    expect(await first.exited).toBe(137); // SIGKILLed; its reaper waited for the adopted services to end
    for (const r of before) expect(running(r.pid!), r.name).toBe(false);
    expect(readdirSync(rt)).toEqual([]);
  });
});

describe('libipc run, when a service cannot start', () => {
  it('counts only what runs, names what does not, stops the rest and exits 1', async () => {
    const rt = join(dir, 'rt-broken');
    mkdirSync(rt);
    const config = join(dir, 'broken.yaml');
    writeFileSync(
      config,
      [
        'services:',
        '  ok:',
        `    command: ${process.execPath}`,
        `    args: [${JSON.stringify(join(FIXTURES, 'sleeper.mjs'))}]`,
        '    readiness: ready',
        '  db:',
        '    command: /nonexistent/libipc-no-such-command',
        '  api:',
        `    command: ${process.execPath}`,
        `    args: [${JSON.stringify(join(FIXTURES, 'sleeper.mjs'))}]`,
        '    dependsOn: [db]',
        '',
      ].join('\n'),
    );
    const run = start(libipc('run', config), { env: { LIBIPC_RUNTIME_DIR: rt } });
    expect(await run.exited).toBe(1);
    const out = run.output();
    expect(out).not.toContain('all 3 service(s) started');
    expect(out).toMatch(/1 of 3 service\(s\) started; not running: .*db \(failed: [^)]*no-such-command/);
    expect(out).toMatch(/api \(stopped: waiting for db, which failed/);
    expect(out).toMatch(/ok\s+stopped/);
    expect(readdirSync(rt)).toEqual([]);
  });
});

describe('libipc run, when the config changed since the last run', () => {
  it('a service that no longer runs starts once with its new spec (never spawned, stopped and spawned again)', async () => {
    const rt = join(dir, 'rt-changed');
    mkdirSync(rt);
    const config = join(dir, 'changed.yaml');
    const store = join(dir, 'changed.db');
    const write = (arg: string) =>
      writeFileSync(
        config,
        ['services:', '  w:', `    command: ${process.execPath}`, `    args: [${JSON.stringify(join(FIXTURES, 'sleeper.mjs'))}, ${arg}]`, '    readiness: ready', ''].join('\n'),
      );
    write('first');
    const one = start(libipc('run', config, '--store', store), { env: { LIBIPC_RUNTIME_DIR: rt } });
    await one.waitFor('all 1 service(s) started');
    one.child.kill('SIGINT');
    expect(await one.exited).toBe(0);

    write('second');
    const two = start(libipc('run', config, '--store', store), { env: { LIBIPC_RUNTIME_DIR: rt } });
    try {
      await two.waitFor('all 1 service(s) started');
      const ps = await cli(['ps', '--json', '--store', store], { LIBIPC_RUNTIME_DIR: rt });
      const [row] = JSON.parse(ps.stdout) as Array<{ pid: number }>;
      expect(readFileSync(`/proc/${row!.pid}/cmdline`, 'utf8').split('\0')).toContain('second');
    } finally {
      two.child.kill('SIGINT');
    }
    expect(await two.exited).toBe(0);
    const out = two.output();
    expect(out.match(/ w\s+(starting|spawned|running \(pid)/g)?.filter((l) => /running/.test(l)) ?? []).toHaveLength(1);
    expect(out.slice(0, out.indexOf('all 1 service(s) started'))).not.toMatch(/ w\s+stopp/);
  });
});
