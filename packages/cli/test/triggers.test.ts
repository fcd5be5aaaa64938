// Restart triggers in the config file (maxMemory, memoryGraceMs, cronRestart, watch) and where their restarts
// show: `libipc run`'s lines, `libipc ps` (REASON, --json lastRestart) and the history beside the store.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../src/config/load-config.js';
import { parseSize } from '../src/config/size.js';
import { reasonText, restartNote } from '../src/restart-note.js';
import { restartLine } from '../src/run/session.js';
import { FIXTURES, cli, libipc, running, start, tempDir } from './support.js';

const MiB = 2 ** 20;
const dir = tempDir();

function config(name: string, text: string) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return () => loadConfig(file, { cwd: dir });
}

describe('config: trigger fields', () => {
  it('maps maxMemory sizes, cron and watch (relative paths against the service cwd) to specs', () => {
    const { specs } = config(
      'ok.yaml',
      [
        'services:',
        '  a:',
        '    command: node',
        '    cwd: app',
        "    maxMemory: '300M'",
        '    memoryGraceMs: 1000',
        "    cronRestart: '0 3 * * *'",
        '    watch: true',
        '  b:',
        '    command: node',
        '    maxMemory: 1073741824',
        '    watch: [src, /etc/b.conf]',
        '  c:',
        '    command: node',
        '    cwd: /srv/c',
        '    watch: { paths: lib, ignore: "*.tmp", debounceMs: 100 }',
        '  d:',
        '    command: node',
        '    watch: { ignore: [dist] }',
      ].join('\n'),
    )();
    const by = Object.fromEntries(specs.map((s) => [s.name, s]));
    expect(by.a).toMatchObject({ maxMemory: 300 * MiB, memoryGraceMs: 1000, cronRestart: '0 3 * * *', watch: { paths: [join(dir, 'app')] } });
    expect(by.b).toMatchObject({ maxMemory: 1024 * MiB, watch: { paths: [join(dir, 'src'), '/etc/b.conf'] } });
    expect(by.c!.watch).toEqual({ paths: ['/srv/c/lib'], ignore: ['*.tmp'], debounceMs: 100 });
    expect(by.d!.watch).toEqual({ paths: [dir], ignore: ['dist'] });
  });

  it.each([
    ['size.yaml', "services:\n  a:\n    command: node\n    maxMemory: '300X'\n", /size\.yaml:4: services\.a\.maxMemory: must be bytes .*'300M'/],
    ['small.yaml', "services:\n  a:\n    command: node\n    maxMemory: '512K'\n", /small\.yaml:4: services\.a\.maxMemory: 512K is less than 1M/],
    ['cron.yaml', "services:\n  a:\n    command: node\n    cronRestart: 'every day'\n", /cron\.yaml:4: services\.a\.cronRestart: 'every day' is not a cron expression/],
    ['never.yaml', "services:\n  a:\n    command: node\n    cronRestart: '0 0 30 2 *'\n", /never\.yaml:4: services\.a\.cronRestart: '0 0 30 2 \*' never fires/],
    ['watch.yaml', 'services:\n  a:\n    command: node\n    watch: { path: src }\n', /watch\.yaml:4: services\.a\.watch/],
  ])('%s is a ConfigError naming file, line and field', (name, text, want) => {
    const load = config(name, text);
    expect(load).toThrow(want);
    expect(load).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
  });

  it.each([
    ['512K', 512 * 1024],
    ['300M', 300 * MiB],
    ['300MB', 300 * MiB],
    ['1G', 1024 * MiB],
    ['1.5g', 1.5 * 1024 * MiB],
    ['300X', undefined],
    ['300', undefined],
    ['M', undefined],
  ])('parseSize(%j) = %s', (text, want) => {
    expect(parseSize(text)).toBe(want);
  });
});

describe('how a trigger restart shows', () => {
  it.each([
    ['running', 'ready', { trigger: 'memory', reason: 'memory: RSS 301 MiB above maxMemory 256 MiB for 3 s' }, 'restart (memory): RSS 301 MiB above maxMemory 256 MiB for 3 s'],
    ['running', 'ready', { trigger: 'crash', reason: 'exited with code 1; restarting in 100 ms' }, 'restart (crash): exited with code 1; restarting in 100 ms'],
    ['failed', 'restart limit 3 reached', { trigger: 'crash', reason: 'x' }, 'restart limit 3 reached'],
    ['running', 'ready', null, 'ready'],
    ['stopped', null, null, ''],
  ] as const)('%s / %j / %j → %j', (state, reason, last, want) => {
    expect(reasonText(state, reason, last)).toBe(want);
  });

  it('restartNote keeps a reason that does not start with its trigger', () => {
    expect(restartNote({ trigger: 'reload', reason: 'rolling' })).toBe('restart (reload): rolling');
  });

  it.each([
    [{ backoffMs: 0, restarts: 1, reason: "cron: '* * * * * *' fired at 2026-01-01T00:00:01.000Z", trigger: 'cron' as const }, "restarting (restart #1: cron: '* * * * * *' fired at 2026-01-01T00:00:01.000Z)"],
    [{ backoffMs: 0, restarts: 2, reason: 'rolling', trigger: 'reload' as const }, 'restarting (restart #2: reload: rolling)'],
    [{ backoffMs: 0, restarts: 1, reason: 'after restart()', trigger: 'manual' as const }, 'restarting (restart #1: after restart())'],
  ])('run prints %j as %j', (e, want) => {
    expect(restartLine(e)).toBe(want);
  });
});

describe('libipc run with cronRestart', () => {
  it('restarts every second; the run, ps (table and --json) and the history say trigger cron', async () => {
    const rt = join(dir, 'rt');
    const store = join(dir, 'cron.json');
    const file = join(dir, 'cron-run.yaml');
    writeFileSync(file, `services:\n  tick:\n    command: node\n    args: [${join(FIXTURES, 'sleeper.mjs')}]\n    readiness: ready\n    cronRestart: '* * * * * *'\n`);
    const run = start(libipc('run', file, '--store', store), { env: { LIBIPC_RUNTIME_DIR: rt } });
    try {
      await run.waitFor('all 1 service(s) started');
      await run.waitFor(/tick\s+restarting \(restart #1: cron: '\* \* \* \* \* \*' fired at /);
      await run.waitFor(/tick\s+running \(pid \d+\)[\s\S]*tick\s+running \(pid \d+\)/);
      // ps reads the store and its history: poll until the restarted process is the one it shows.
      const deadline = Date.now() + 30_000;
      let row: { state: string; lastRestart: { trigger: string; reason: string } | null; pid: number } | undefined;
      for (;;) {
        const r = await cli(['ps', '--json', '--store', store], { LIBIPC_RUNTIME_DIR: rt });
        expect(r.code, r.stderr).toBe(0);
        row = (JSON.parse(r.stdout) as Array<typeof row>)[0];
        if (row?.state === 'running' && row.lastRestart) break;
        if (Date.now() > deadline) throw new Error(`ps never showed a restarted tick: ${r.stdout}`);
      }
      expect(row.lastRestart).toMatchObject({ trigger: 'cron', reason: expect.stringMatching(/^cron: /) });
      const table = await cli(['ps', '--store', store], { LIBIPC_RUNTIME_DIR: rt });
      // running after a restart: 'restart (cron): …'; caught mid-restart: the stop's reason, 'cron: …'.
      expect(table.stdout).toMatch(/tick\s.*(restart \(cron\)|cron: ')/);
      const history = readFileSync(join(dir, 'cron.history.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; trigger?: string });
      expect(history.filter((e) => e.type === 'restart').every((e) => e.trigger === 'cron')).toBe(true);
      expect(history.some((e) => e.type === 'restart')).toBe(true);
    } finally {
      run.child.kill('SIGINT');
    }
    expect(await run.exited).toBe(0);
    const pids = [...run.output().matchAll(/tick\s+running \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(new Set(pids).size).toBeGreaterThanOrEqual(2);
    for (const pid of pids) expect(running(pid)).toBe(false);
  });
});

describe('the daemon', () => {
  it('takes the trigger fields through libipc start, save and resurrect', async () => {
    const home = mkdtempSync(join(tmpdir(), 'libipc-trg-daemon-'));
    const env = { LIBIPC_HOME: join(home, 'home'), LIBIPC_RUNTIME_DIR: join(home, 'rt'), LIBIPC_SWEEP_MS: '0' };
    onTestFinished(async () => {
      const r = await cli(['kill-daemon'], env);
      rmSync(home, { recursive: true, force: true });
      expect(r.code, r.stderr).toBe(0);
    });
    mkdirSync(join(home, 'src'));
    const file = join(home, 'daemon-triggers.yaml');
    writeFileSync(
      file,
      `services:\n  tick:\n    command: node\n    args: [${join(FIXTURES, 'sleeper.mjs')}]\n    readiness: ready\n    cronRestart: '* * * * * *'\n    maxMemory: 1G\n    watch: src\n`,
    );
    const started = await cli(['start', file], env);
    expect(started.code, started.stderr + started.stdout).toBe(0);
    /** Polls `ps --json` (the daemon's rows, with lastRestart from its status) until tick was restarted by cron. */
    const cronRestarted = async (): Promise<void> => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await cli(['ps', '--json'], env);
        const row = (JSON.parse(r.stdout) as Array<{ name: string; lastRestart: { trigger: string } | null }>).find((x) => x.name === 'tick');
        if (row?.lastRestart?.trigger === 'cron') return;
        if (Date.now() > deadline) throw new Error(`tick was never restarted by cron: ${r.stdout}`);
      }
    };
    await cronRestarted();
    expect((await cli(['save'], env)).code).toBe(0);
    const dump = JSON.parse(readFileSync(join(env.LIBIPC_HOME, 'dump.json'), 'utf8')) as { services: Array<{ spec: Record<string, unknown> }> };
    expect(dump.services[0]!.spec).toMatchObject({ cronRestart: '* * * * * *', maxMemory: 1024 * MiB, watch: { paths: [join(home, 'src')] } });
    expect((await cli(['kill-daemon'], env)).code).toBe(0);
    const res = await cli(['resurrect'], env);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    await cronRestarted();
  });
});
