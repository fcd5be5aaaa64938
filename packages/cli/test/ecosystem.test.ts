// PM2 ecosystem files as PM2's documentation writes them, run by `libipc run` and `libipc start`: the same
// services PM2 would start (names, instance count, env with --env production), the ignored fields named once,
// wait_ready apps that say `process.send('ready')`, and `libipc convert`'s YAML loading as it is.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { specsForEnvironment } from '../src/config/load-config.js';
import { byName, daemonEnv, ps as daemonPs } from './daemon-support.js';
import { type Running, cli, libipc, running, start, tempDir } from './support.js';

const dir = tempDir();
const env = { LIBIPC_RUNTIME_DIR: join(dir, 'rt') };
const CPUS = cpus().length;

// The apps: they say who they are and sleep until stopped.
const APP = "console.log('up', process.env.LIBIPC_SERVICE, process.env.NODE_ENV, process.argv.slice(2).join(' '));\nsetInterval(() => {}, 1 << 30);\n";
function project(name: string, files: Record<string, string>): string {
  const at = join(dir, name);
  mkdirSync(at, { recursive: true });
  for (const [f, text] of Object.entries({ 'app.js': APP, 'worker.js': APP, 'api.js': APP, ...files })) writeFileSync(join(at, f), text);
  return at;
}

// Every pid seen: SIGKILLed after the file's tests should a failed test leave one.
const seen = new Set<number>();
afterAll(() => {
  for (const pid of seen) if (running(pid)) process.kill(pid, 'SIGKILL');
});

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

/** `libipc run …` until every service started: its services by name (pid), from `libipc ps`. */
async function runUntilStarted(cwd: string, ...args: string[]): Promise<{ run: Running; pids: Record<string, number> }> {
  const run = start(libipc('run', ...args), { env, cwd });
  await run.waitFor(/all \d+ service\(s\) started/);
  const r = await cli(['ps', '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  const pids = Object.fromEntries((JSON.parse(r.stdout) as Array<{ name: string; pid: number }>).map((x) => [x.name, x.pid]));
  for (const pid of Object.values(pids)) seen.add(pid);
  return { run, pids };
}

async function stopRun(run: Running, pids: Record<string, number>): Promise<void> {
  run.child.kill('SIGINT');
  await run.waitFor('everything stopped cleanly');
  expect(await run.exited).toBe(0);
  for (const pid of Object.values(pids)) expect(running(pid), `pid ${pid}`).toBe(false);
}

// PM2 docs, "Ecosystem File": the generated file with an environment per deployment.
const QUICK_START = `module.exports = {
  apps : [{
    name   : "app1",
    script : "./app.js",
    instances: "max",
    env: {
      NODE_ENV: "development"
    },
    env_production: {
      NODE_ENV: "production"
    },
    env_development: {
      NODE_ENV: "development"
    }
  }]
}
`;

describe('libipc run <ecosystem file>', () => {
  it("PM2's quick-start ecosystem.config.js with --env production: one instance per CPU, env_production's variables", async () => {
    const cwd = project('quick', { 'ecosystem.config.js': QUICK_START });
    const { run, pids } = await runUntilStarted(cwd, 'ecosystem.config.js', '--env', 'production');
    try {
      expect(Object.keys(pids).sort()).toEqual(Array.from({ length: CPUS }, (_, i) => `app1.${i}`));
      for (const pid of Object.values(pids)) {
        expect(environ(pid)).toContain('NODE_ENV=production');
        expect(argv(pid).slice(1)).toEqual(['./app.js', expect.stringMatching(/^\d+$/)]); // node ./app.js <instance id>
      }
      expect(run.output()).not.toMatch(/ignored/);
    } finally {
      await stopRun(run, pids);
    }
  });

  it('several apps in an ESM ecosystem (export default): names as PM2 gives them, args split, each ignored field named once', async () => {
    // PM2 docs: "limit worker" and "rotate worker", one script with different args.
    const cwd = project('multi', {
      'ecosystem.config.mjs': `export default {
  apps : [{
    name   : "limit worker",
    script : "./worker.js",
    args   : "limit --every '5 s'",
    merge_logs: true,
  },{
    name   : "rotate worker",
    script : "./worker.js",
    args   : "rotate",
    merge_logs: true,
    time: true,
  }]
}
`,
    });
    const { run, pids } = await runUntilStarted(cwd, 'ecosystem.config.mjs');
    try {
      expect(Object.keys(pids).sort()).toEqual(['limit-worker', 'rotate-worker']);
      expect(argv(pids['limit-worker']!).slice(1, 5)).toEqual(['./worker.js', 'limit', '--every', '5 s']);
      expect(argv(pids['rotate-worker']!).slice(1, 3)).toEqual(['./worker.js', 'rotate']);
      const warned = run.output().split('\n').filter((l) => l.includes('ignored'));
      expect(warned).toEqual(['libipc run: ecosystem.config.mjs: PM2 fields with no libipc equivalent, ignored: merge_logs, time']);
      expect(run.output()).toContain("app names are [A-Za-z0-9._-] here: 'limit worker' runs as 'limit-worker', 'rotate worker' runs as 'rotate-worker'");
    } finally {
      await stopRun(run, pids);
    }
  });

  it('a YAML ecosystem without --env: env_* blocks are ignored', async () => {
    // PM2 docs, the YAML form of an ecosystem file.
    const cwd = project('yaml', {
      'ecosystem.yml': `apps:
  - script   : ./api.js
    name     : api-app
    instances: 2
    exec_mode: cluster
  - script : ./worker.js
    name   : worker
    env    :
      NODE_ENV: development
    env_production:
      NODE_ENV: production
`,
    });
    const { run, pids } = await runUntilStarted(cwd, 'ecosystem.yml');
    try {
      expect(Object.keys(pids).sort()).toEqual(['api-app.0', 'api-app.1', 'worker']);
      expect(environ(pids.worker!)).toContain('NODE_ENV=development');
    } finally {
      await stopRun(run, pids);
    }
  });

  it('a native config with env_<name> blocks: --env merges the top level one, then the service one', async () => {
    const cwd = project('native', {
      'libipc.yaml': `env:
  LEVEL: top
  REGION: eu
env_production:
  REGION: us
  DB: prod-db
services:
  api:
    command: [node, app.js]
    env:
      DB: dev-db
      NODE_ENV: development
    env_production:
      NODE_ENV: production
`,
    });
    const { run, pids } = await runUntilStarted(cwd, 'libipc.yaml', '--env', 'production');
    try {
      // The service's own env wins over the top level's production block (DB), its production block over its env.
      expect(environ(pids.api!)).toEqual(expect.arrayContaining(['LEVEL=top', 'REGION=us', 'DB=dev-db', 'NODE_ENV=production']));
    } finally {
      await stopRun(run, pids);
    }
  });

  it('an unknown --env name is refused with the names the file has; a block that is no map is named with its line', async () => {
    const cwd = project('unknown', { 'ecosystem.config.js': QUICK_START, 'bad.yaml': 'services:\n  a:\n    command: node\n    env_production: 5\n' });
    const r = await cli(['run', 'ecosystem.config.js', '--env', 'staging'], env, cwd);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('libipc run: ecosystem.config.js: --env staging: the file has no env_staging block; its environments: development, production (ERR_LIBIPC_INVALID_ARGUMENT)');
    const bad = await cli(['run', 'bad.yaml'], env, cwd);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^libipc run: bad\.yaml:4: services\.a\.env_production: must be a map of NAME: value/);
  });
});

describe('specsForEnvironment (what start and reload --env send the daemon)', () => {
  it('folds the top-level env and the chosen blocks into each spec; an unknown name lists the known ones', async () => {
    const cwd = project('specs', { 'libipc.yaml': 'env: { A: top }\nenv_prod: { B: top-prod }\nservices:\n  api:\n    command: node\n    env: { C: api }\n    env_prod: { C: api-prod }\n' });
    const { specs, warnings } = await specsForEnvironment('libipc.yaml', 'prod', { cwd });
    expect(warnings).toEqual([]);
    expect(specs.map((s) => [s.name, s.env])).toEqual([['api', { A: 'top', B: 'top-prod', C: 'api-prod' }]]);
    expect((await specsForEnvironment('libipc.yaml', undefined, { cwd })).specs[0]!.env).toEqual({ A: 'top', C: 'api' });
    await expect(specsForEnvironment('libipc.yaml', 'staging', { cwd })).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringMatching(/no env_staging block; its environments: prod$/) });
  });
});

describe('libipc start <ecosystem file> (daemon)', () => {
  const denv = daemonEnv();

  it('a JSON ecosystem with --env production: the same services PM2 starts', async () => {
    // PM2 docs, the JSON form: a worker with environments and a 4-instance cluster.
    const cwd = project('json', {
      'ecosystem.json': `{
  "apps" : [{
    "name"        : "worker-app",
    "script"      : "./worker.js",
    "env": {
      "NODE_ENV": "development"
    },
    "env_production" : {
      "NODE_ENV": "production"
    }
  },{
    "name"       : "api-app",
    "script"     : "./api.js",
    "instances"  : 4,
    "exec_mode"  : "cluster"
  }]
}
`,
    });
    const r = await cli(['start', 'ecosystem.json', '--env', 'production'], denv, cwd);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const rows = await daemonPs(denv);
    expect(rows.map((x) => x.name).sort()).toEqual(['api-app.0', 'api-app.1', 'api-app.2', 'api-app.3', 'worker-app']);
    for (const x of rows) expect(x.state).toBe('running');
    expect(environ(byName(rows)['worker-app']!.pid!)).toContain('NODE_ENV=production');
    expect(environ(byName(rows)['api-app.2']!.pid!)).not.toContain('NODE_ENV=production');
  });

  it("wait_ready: an app's process.send('ready') makes it ready; one that never says it fails at listen_timeout", async () => {
    const cwd = project('ready', {
      'ready.js': "process.send('ready', () => console.log('said ready'));\nsetInterval(() => {}, 1 << 30);\n",
      'mute.js': 'setInterval(() => {}, 1 << 30);\n',
      'ready.config.js': "module.exports = { apps: [{ name: 'says', script: 'ready.js', wait_ready: true }] };\n",
      'mute.config.js': "module.exports = { apps: [{ name: 'mute', script: 'mute.js', wait_ready: true, listen_timeout: 1500, autorestart: false }] };\n",
    });
    const ok = await cli(['start', 'ready.config.js'], denv, cwd);
    expect(ok.code, ok.stderr).toBe(0);
    expect(byName(await daemonPs(denv)).says).toMatchObject({ state: 'running' });
    // Its callback ran too (the line may reach the log file just after READY did).
    await expect.poll(async () => (await cli(['logs', 'says', '--lines', '5'], denv)).stdout, { timeout: 10_000 }).toContain('said ready');
    const mute = await cli(['start', 'mute.config.js'], denv, cwd);
    expect(mute.code).toBe(1);
    expect(mute.stderr).toMatch(/mute failed: .*READY.*\(ERR_LIBIPC_TIMEOUT\)/);
  });
});

describe('libipc convert', () => {
  it("prints native YAML (warnings on stderr) that libipc run loads as it is, starting what the ecosystem file would", async () => {
    const cwd = project('convert', {
      'ecosystem.config.js': QUICK_START.replace('instances: "max",', 'instances: 2,\n    args: "--port 80",\n    kill_timeout: 3000,\n    vizion: false,\n    log_date_format: "YYYY-MM-DD",'),
    });
    const r = await cli(['convert', 'ecosystem.config.js'], env, cwd);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('libipc convert: ecosystem.config.js: PM2 fields with no libipc equivalent, ignored: vizion, log_date_format\n');
    expect(parse(r.stdout)).toEqual({
      services: {
        app1: {
          command: ['node', './app.js'],
          args: ['--port', '80'],
          env: { NODE_ENV: 'development' },
          env_production: { NODE_ENV: 'production' },
          env_development: { NODE_ENV: 'development' },
          instances: 2,
          restart: 'always',
          stopTimeoutMs: 3000,
        },
      },
    });
    writeFileSync(join(cwd, 'libipc.yaml'), r.stdout);
    const { run, pids } = await runUntilStarted(cwd, 'libipc.yaml', '--env', 'production');
    try {
      expect(Object.keys(pids).sort()).toEqual(['app1.0', 'app1.1']);
      for (const pid of Object.values(pids)) {
        expect(environ(pid)).toContain('NODE_ENV=production');
        expect(argv(pid).slice(1, 4)).toEqual(['./app.js', '--port', '80']);
      }
    } finally {
      await stopRun(run, pids);
    }
  });

  it('refuses a file that is already native', async () => {
    const cwd = project('native2', { 'libipc.yaml': 'services:\n  a:\n    command: node\n' });
    const r = await cli(['convert', 'libipc.yaml'], env, cwd);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a PM2 ecosystem file .*\(ERR_LIBIPC_INVALID_ARGUMENT\)/);
  });
});
