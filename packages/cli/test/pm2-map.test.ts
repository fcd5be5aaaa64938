// The decisions of PM2 support, as tables: a PM2 app → the native service and the fields ignored; `--env`
// over env_<name> blocks; what `libipc start <file>` takes an ecosystem file for; PM2's argument splitting.
import { extname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectEnvironment, unknownEnvironment } from '../src/config/environments.js';
import { type Pm2App, type Pm2Context, duration, instanceCount, mapPm2App, mapPm2Apps, memory } from '../src/config/pm2-map.js';
import { splitArgs } from '../src/config/split-args.js';
import { planStart } from '../src/daemon/start-args.js';

const files: Record<string, 'shebang' | 'text' | 'binary' | 'missing'> = { 'bin/www': 'text', 'run.sh': 'text', 'tools/serve': 'shebang', 'srv/app/server': 'binary', 'gone.js': 'missing', 'srv/app.js': 'missing' };
// Any name with an extension is a text file here; other names are not files (a command on PATH, say).
const ctx: Pm2Context = { cpus: 4, probe: (p) => files[p] ?? (extname(p) === '' ? 'missing' : 'text'), readyPreload: '/lib/pm2-ready.cjs', home: '/home/ann' };
const always = { restart: 'always' };

describe('a PM2 app → a native service', () => {
  it.each<[string, Pm2App, Record<string, unknown>, string[]?]>([
    ['name and script', { name: 'app', script: './app.js' }, { name: 'app', command: ['node', './app.js'], ...always }],
    ['no name: the script name', { script: 'server.mjs' }, { name: 'server', command: ['node', 'server.mjs'], ...always }],
    ['args as a string are split like a shell', { name: 'w', script: 'w.js', args: '--mode "rotate all" -v' }, { name: 'w', command: ['node', 'w.js'], args: ['--mode', 'rotate all', '-v'], ...always }],
    ['args as a list', { name: 'w', script: 'w.js', args: ['limit', 3] }, { name: 'w', command: ['node', 'w.js'], args: ['limit', '3'], ...always }],
    ['interpreter and its args', { name: 'p', script: 'job.py', interpreter: '/usr/bin/python3', interpreter_args: '-u' }, { name: 'p', command: ['/usr/bin/python3', '-u', 'job.py'], ...always }],
    ['node_args go to node', { name: 'n', script: 'a.js', node_args: '--max-old-space-size=512 -r dotenv/config' }, { name: 'n', command: ['node', '--max-old-space-size=512', '-r', 'dotenv/config', 'a.js'], ...always }],
    ['a node by its path gets node_args and the preload', { name: 'n', script: 'a.js', interpreter: '/opt/node20/bin/node', node_args: '--inspect', wait_ready: true }, { name: 'n', command: ['/opt/node20/bin/node', '--inspect', '--require', '/lib/pm2-ready.cjs', 'a.js'], readiness: 'ready', ...always }],
    ['exec_interpreter is interpreter', { name: 'n', script: 'a.js', exec_interpreter: 'nodejs' }, { name: 'n', command: ['node', 'a.js'], ...always }],
    ['.sh runs with bash, .py with python3', { name: 's', script: 'run.sh' }, { name: 's', command: ['bash', 'run.sh'], ...always }],
    ['interpreter none: the script itself', { name: 'b', script: './bin/tool', interpreter: 'none' }, { name: 'b', command: './bin/tool', ...always }],
    ['none with cwd: the script in cwd', { name: 'b', script: 'server', interpreter: 'none', cwd: 'srv/app' }, { name: 'b', command: 'srv/app/server', cwd: 'srv/app', ...always }],
    ['a command on PATH (npm start)', { name: 'web', script: 'npm', args: 'start' }, { name: 'web', command: 'npm', args: ['start'], ...always }],
    ['a text file without extension runs with node (bin/www)', { name: 'www', script: 'bin/www' }, { name: 'www', command: ['node', 'bin/www'], ...always }],
    ['a file with #! runs itself', { name: 'srv', script: 'tools/serve' }, { name: 'srv', command: 'tools/serve', ...always }],
    ['a name PM2 takes and libipc does not', { name: 'limit worker', script: 'w.js' }, { name: 'limit-worker', command: ['node', 'w.js'], ...always }],
    ['instances max', { name: 'a', script: 'a.js', instances: 'max' }, { name: 'a', command: ['node', 'a.js'], instances: 4, ...always }],
    ['instances -1 = one per CPU but one', { name: 'a', script: 'a.js', instances: -1 }, { name: 'a', command: ['node', 'a.js'], instances: 3, ...always }],
    ['cluster with a numeric PORT shares it', { name: 'a', script: 'a.js', instances: 2, exec_mode: 'cluster', env: { PORT: 3000 } }, { name: 'a', command: ['node', 'a.js'], instances: 2, env: { PORT: 3000 }, listen: 3000, ...always }],
    ['instances with node and no exec_mode = cluster (PM2)', { name: 'a', script: 'a.js', instances: 2, env: { PORT: '8080' } }, { name: 'a', command: ['node', 'a.js'], instances: 2, env: { PORT: '8080' }, listen: 8080, ...always }],
    ['fork mode: no listen', { name: 'a', script: 'a.js', instances: 2, exec_mode: 'fork_mode', env: { PORT: 3000 } }, { name: 'a', command: ['node', 'a.js'], instances: 2, env: { PORT: 3000 }, ...always }],
    ['cluster with a PORT that is no number', { name: 'a', script: 'a.js', exec_mode: 'cluster', env: { PORT: '/tmp/sock' } }, { name: 'a', command: ['node', 'a.js'], env: { PORT: '/tmp/sock' }, ...always }],
    ['env and env_* blocks kept', { name: 'a', script: 'a.js', env: { A: 1 }, env_production: { A: 2 } }, { name: 'a', command: ['node', 'a.js'], env: { A: 1 }, env_production: { A: 2 }, ...always }],
    ['max_memory_restart', { name: 'a', script: 'a.js', max_memory_restart: '300M' }, { name: 'a', command: ['node', 'a.js'], maxMemory: '300M', ...always }],
    ['cron_restart', { name: 'a', script: 'a.js', cron_restart: '0 */6 * * *' }, { name: 'a', command: ['node', 'a.js'], cronRestart: '0 */6 * * *', ...always }],
    ['cron_restart 0 = none', { name: 'a', script: 'a.js', cron_restart: 0 }, { name: 'a', command: ['node', 'a.js'], ...always }],
    ['watch true', { name: 'a', script: 'a.js', watch: true }, { name: 'a', command: ['node', 'a.js'], watch: true, ...always }],
    ['watch paths, ignore_watch, watch_delay', { name: 'a', script: 'a.js', watch: ['src', 'conf'], ignore_watch: ['node_modules', '*.log'], watch_delay: 500 }, { name: 'a', command: ['node', 'a.js'], watch: { paths: ['src', 'conf'], ignore: ['node_modules', '*.log'], debounceMs: 500 }, ...always }],
    ['watch true with ignore_watch string', { name: 'a', script: 'a.js', watch: true, ignore_watch: 'logs' }, { name: 'a', command: ['node', 'a.js'], watch: { ignore: ['logs'] }, ...always }],
    ['watch false', { name: 'a', script: 'a.js', watch: false }, { name: 'a', command: ['node', 'a.js'], ...always }],
    ['autorestart false', { name: 'a', script: 'a.js', autorestart: false }, { name: 'a', command: ['node', 'a.js'], restart: 'never' }],
    ['max_restarts', { name: 'a', script: 'a.js', max_restarts: 10 }, { name: 'a', command: ['node', 'a.js'], restartLimit: 10, ...always }],
    ['min_uptime as a string', { name: 'a', script: 'a.js', min_uptime: '10s' }, { name: 'a', command: ['node', 'a.js'], restart: { policy: 'always', minUptimeMs: 10_000 } }],
    ['min_uptime in ms', { name: 'a', script: 'a.js', min_uptime: 5000 }, { name: 'a', command: ['node', 'a.js'], restart: { policy: 'always', minUptimeMs: 5000 } }],
    ['restart_delay: a fixed delay', { name: 'a', script: 'a.js', restart_delay: 4000 }, { name: 'a', command: ['node', 'a.js'], restart: { policy: 'always', backoff: { initialMs: 4000, factor: 1, maxMs: 4000, jitter: 0 } } }],
    ['exp_backoff_restart_delay: PM2 backoff', { name: 'a', script: 'a.js', exp_backoff_restart_delay: 100 }, { name: 'a', command: ['node', 'a.js'], restart: { policy: 'always', backoff: { initialMs: 100, factor: 1.5, maxMs: 15_000, jitter: 0 } } }],
    ['exp_backoff_restart_delay above 15 s', { name: 'a', script: 'a.js', exp_backoff_restart_delay: 20_000 }, { name: 'a', command: ['node', 'a.js'], restart: { policy: 'always', backoff: { initialMs: 20_000, factor: 1.5, maxMs: 20_000, jitter: 0 } } }],
    ['stop_exit_codes', { name: 'a', script: 'a.js', stop_exit_codes: [0, 3] }, { name: 'a', command: ['node', 'a.js'], restart: { policy: 'always', stopExitCodes: [0, 3] } }],
    ['kill_timeout, listen_timeout', { name: 'a', script: 'a.js', kill_timeout: 3000, listen_timeout: 8000 }, { name: 'a', command: ['node', 'a.js'], stopTimeoutMs: 3000, startTimeoutMs: 8000, ...always }],
    ['wait_ready: readiness ready, the preload', { name: 'a', script: 'a.js', wait_ready: true }, { name: 'a', command: ['node', '--require', '/lib/pm2-ready.cjs', 'a.js'], readiness: 'ready', ...always }],
    ['wait_ready with another interpreter: no preload', { name: 'a', script: 'a.py', wait_ready: true }, { name: 'a', command: ['python3', 'a.py'], readiness: 'ready', ...always }],
    ['out_file and error_file: their folder', { name: 'a', script: 'a.js', out_file: './logs/out.log', error_file: './logs/err.log' }, { name: 'a', command: ['node', 'a.js'], logs: './logs', ...always }],
    ['~ in a log path', { name: 'a', script: 'a.js', out_file: '~/.pm2/logs/a-out.log' }, { name: 'a', command: ['node', 'a.js'], logs: '/home/ann/.pm2/logs', ...always }],
    ['logs to /dev/null', { name: 'a', script: 'a.js', out_file: '/dev/null', error_file: '/dev/null' }, { name: 'a', command: ['node', 'a.js'], logs: 'ignore', ...always }],
    ['unknown fields are named', { name: 'a', script: 'a.js', merge_logs: true, log_date_format: 'YYYY', vizion: false }, { name: 'a', command: ['node', 'a.js'], ...always }, ['merge_logs', 'log_date_format', 'vizion']],
  ])('%s', (_, app, service, ignored = []) => {
    const m = mapPm2App(app, ctx);
    expect(m.service).toEqual(service);
    expect(m.ignored).toEqual(ignored);
  });

  it('--env production: its PORT is the one shared', () => {
    const app = { name: 'a', script: 'a.js', instances: 2, env: { PORT: 3000 }, env_production: { PORT: 80 } };
    expect(mapPm2App(app, { ...ctx, environment: 'production' }).service.listen).toBe(80);
    expect(mapPm2App(app, ctx).service.listen).toBe(3000);
  });

  it('each ignored field is named once for all apps; renamed apps are named', () => {
    const apps = [
      { name: 'a', script: 'a.js', merge_logs: true, time: true },
      { name: 'b c', script: 'b.js', merge_logs: true, vizion: false },
    ];
    expect(mapPm2Apps(apps, ctx)).toMatchObject({ ignored: ['merge_logs', 'time', 'vizion'], renamed: ["'b c' runs as 'b-c'"] });
  });

  it.each<[Pm2App, RegExp]>([
    [{ name: 'a' }, /script: is required/],
    [{ script: 'gone.js' }, /script: there is no file gone\.js/],
    [{ script: 'app.js', interpreter: 'node', cwd: 'srv' }, /script: there is no file srv\/app\.js/],
    [{ script: 'a.js', instances: 'many' }, /instances: .*'max'/],
    [{ script: 'a.js', exec_mode: 'turbo' }, /exec_mode: must be 'fork' or 'cluster'/],
    [{ script: 'a.js', max_memory_restart: 'lots' }, /max_memory_restart: must be bytes or a size/],
    [{ script: 'a.js', min_uptime: 'soon' }, /min_uptime: must be milliseconds/],
    [{ script: 'a.js', args: { a: 1 } }, /args: must be a string or a list/],
    [{ script: 'a.js', watch: 3 }, /watch: must be true, a path/],
  ])('%j is refused, naming the app and field', (app, message) => {
    expect(() => mapPm2Apps([app], ctx)).toThrow(expect.objectContaining({ message: expect.stringMatching(/./), field: expect.stringMatching(/^apps\[0\]/) }));
    try {
      mapPm2Apps([app], ctx);
    } catch (err) {
      expect(`${(err as { field: string }).field}: ${(err as Error).message}`).toMatch(message);
    }
  });

  it.each<[unknown, number]>([
    [undefined, 1],
    [1, 1],
    [3, 3],
    ['3', 3],
    ['max', 4],
    [0, 4],
    [-1, 3],
  ])('instances %j on 4 CPUs = %i', (v, n) => expect(instanceCount(v, 4)).toBe(n));
  it('instances -1 on one CPU is still one', () => expect(instanceCount(-1, 1)).toBe(1));

  it.each<[unknown, string | number]>([
    ['300M', '300M'],
    ['1G', '1G'],
    ['512K', '512K'],
    [1_048_576, 1_048_576],
    ['300MB', 300 * 2 ** 20],
    ['1.5G', 1.5 * 2 ** 30],
    ['200m', 200 * 2 ** 20],
    ['4096', 4096],
  ])('max_memory_restart %j → maxMemory %j', (v, want) => expect(memory(v)).toBe(want));

  it.each<[unknown, number]>([
    [1000, 1000],
    ['1000', 1000],
    ['500ms', 500],
    ['10s', 10_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
  ])('duration %j = %i ms', (v, ms) => expect(duration(v, 'x')).toBe(ms));
});

describe('splitting args as PM2 does', () => {
  it.each<[string, string[]]>([
    ['', []],
    ['  a   b ', ['a', 'b']],
    ['--name "my app" --x=1', ['--name', 'my app', '--x=1']],
    ["'single quoted' \"dq \\\"in\\\"\"", ['single quoted', 'dq "in"']],
    ['a\\ b c', ['a b', 'c']],
    ['$HOME *.js', ['$HOME', '*.js']],
    ['""', ['']],
  ])('%j → %j', (line, args) => expect(splitArgs(line)).toEqual(args));
});

describe('--env <name> over env_<name> blocks', () => {
  const file = {
    env: { A: 'top', B: 'top' },
    env_production: { B: 'top-prod', C: 'top-prod' },
    services: {
      api: { command: 'x', env: { C: 'api', D: 'api' }, env_production: { D: 'api-prod' }, env_staging: { D: 'api-staging' } },
      db: { command: 'y' },
    },
  };

  it('the chosen block is merged over env, at the top level and in each service; the others go', () => {
    const r = selectEnvironment(file, 'production');
    expect(r.unknown).toBe(false);
    expect(r.names).toEqual(['production', 'staging']);
    expect(r.data).toEqual({
      env: { A: 'top', B: 'top-prod', C: 'top-prod' },
      services: { api: { command: 'x', env: { C: 'api', D: 'api-prod' } }, db: { command: 'y' } },
    });
  });

  it('a name only one service has is known', () => {
    expect(selectEnvironment(file, 'staging')).toMatchObject({ unknown: false, data: { env: { A: 'top', B: 'top' }, services: { api: { env: { C: 'api', D: 'api-staging' } } } } });
  });

  it('without --env every block is ignored', () => {
    expect(selectEnvironment(file)).toMatchObject({ unknown: false, data: { env: { A: 'top', B: 'top' }, services: { api: { command: 'x', env: { C: 'api', D: 'api' } } } } });
    expect(Object.keys((selectEnvironment(file).data as { services: { api: object } }).services.api)).toEqual(['command', 'env']);
  });

  it('a list of services, and a service without env of its own', () => {
    const r = selectEnvironment({ services: [{ name: 'a', command: 'x', env_production: { P: '1' } }] }, 'production');
    expect(r.data).toEqual({ services: [{ name: 'a', command: 'x', env: { P: '1' } }] });
  });

  it('an unknown name is reported with the names the file has', () => {
    expect(selectEnvironment(file, 'prod').unknown).toBe(true);
    expect(unknownEnvironment('prod', ['production', 'staging'])).toBe('--env prod: the file has no env_prod block; its environments: production, staging');
    expect(unknownEnvironment('prod', [])).toMatch(/has no env_<name> blocks/);
  });
});

describe('libipc start <ecosystem file>', () => {
  const here = ['/srv/app/ecosystem.config.js', '/srv/app/pm2.config.cjs', '/srv/app/ecosystem.json', '/srv/app/app.js', '/srv/app/ecosystem.yaml'];
  const sctx = { cwd: '/srv/app', isFile: (p: string) => here.includes(p), node: '/usr/bin/node', logsDir: '/h/logs' };
  it.each([
    [{ target: 'ecosystem.config.js', args: [], env: [] }, { kind: 'config', file: '/srv/app/ecosystem.config.js' }],
    [{ target: 'pm2.config.cjs', args: [], env: ['production'] }, { kind: 'config', file: '/srv/app/pm2.config.cjs', environment: 'production' }],
    [{ target: 'ecosystem.json', args: [], env: ['staging'] }, { kind: 'config', file: '/srv/app/ecosystem.json', environment: 'staging' }],
    [{ target: 'app.js', args: [], env: ['A=1'] }, { kind: 'service', spec: { name: 'app', command: '/usr/bin/node', args: ['/srv/app/app.js'], env: { A: '1' }, cwd: '/srv/app', logs: { dir: '/h/logs' } } }],
  ])('%j → %j', (a, plan) => expect(planStart(a, sctx)).toEqual(plan));

  it.each([
    [{ target: 'ecosystem.yaml', args: [], env: ['A=1'] }, /--env A=1 apply to a script or a command/],
    [{ target: 'ecosystem.yaml', args: [], env: ['a', 'b'] }, /--env names one environment/],
    [{ target: 'app.js', args: [], env: ['production'] }, /--env takes KEY=VALUE .*picks the env_<name> blocks of a config file/],
  ])('%j is a usage error', (a, message) => {
    expect(() => planStart(a, sctx)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', exitCode: 2, message: expect.stringMatching(message) }));
  });
});
