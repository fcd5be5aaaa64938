// The daemon's pure parts, as tables: targets and their order, start arguments, the systemd unit, CPU bookkeeping, the wire format.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPrivateDir, daemonHome } from '../src/daemon/home.js';
import { lineSplitter, parseRequest } from '../src/daemon/protocol.js';
import { cpuText, memText } from '../src/daemon/rows.js';
import { defaultName, parseEnv, planStart } from '../src/daemon/start-args.js';
import { quoteWord, unitText } from '../src/daemon/systemd.js';
import { dependencyOrder, removalOrder, resolveTargets, restartRoots } from '../src/daemon/targets.js';
import { UsageSampler, usageOf } from '../src/daemon/usage-sampler.js';

const deps: Record<string, string[]> = { db: [], cache: [], api: ['db', 'cache'], web: ['api'], worker: ['api'], lone: [] };
const depsOf = (n: string) => deps[n.replace(/\.\d+$/, '')] ?? [];
const units = [
  { name: 'api', service: 'api' },
  { name: 'cache', service: 'cache' },
  { name: 'db', service: 'db' },
  { name: 'lone', service: 'lone' },
  { name: 'web', service: 'web' },
  { name: 'worker.0', service: 'worker' },
  { name: 'worker.1', service: 'worker' },
];
const glob = (g: string) => new RegExp(`^${g.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
const known = {
  services: Object.keys(deps),
  units,
  match: (g: string) => units.filter((u) => glob(g).test(u.name) || glob(g).test(u.service)),
};

describe('resolveTargets', () => {
  it.each([
    [['api'], ['api']],
    [['worker.1'], ['worker.1']],
    [['all'], ['db', 'cache', 'api', 'web', 'worker', 'lone']],
    [['w*'], ['web', 'worker']],
    [['worker'], ['worker']],
    [['api', 'a*', 'db'], ['api', 'db']],
  ])('%j → %j', (targets, want) => expect(resolveTargets(targets, known)).toEqual(want));

  it.each([[['nope']], [['zz*']], [['api', 'nope']]])('%j names nothing: ERR_LIBIPC_NOT_FOUND', (targets) => {
    expect(() => resolveTargets(targets, known)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_NOT_FOUND' }));
  });
});

describe('dependency order', () => {
  it.each([
    [['web', 'api', 'db'], ['db']], // restarting db restarts api, then web
    [['web', 'api'], ['api']],
    [['web', 'worker'], ['web', 'worker']],
    [['cache', 'db', 'lone'], ['cache', 'db', 'lone']],
    [['worker.0', 'api'], ['api']],
  ])('restartRoots(%j) → %j', (names, want) => expect(restartRoots(names, depsOf)).toEqual(want));

  it.each([
    [['web', 'api', 'db', 'cache'], ['db', 'cache', 'api', 'web']],
    [['worker', 'lone', 'api'], ['api', 'worker', 'lone']],
  ])('dependencyOrder(%j) → %j; removalOrder is its reverse', (names, want) => {
    expect(dependencyOrder(names, depsOf)).toEqual(want);
    expect(removalOrder(names, depsOf)).toEqual([...want].reverse());
  });
});

describe('start arguments', () => {
  const ctx = { cwd: '/srv/app', isFile: (p: string) => ['/srv/app/app.js', '/srv/app/services.yaml', '/srv/app/conf.json'].includes(p), node: '/usr/bin/node', logsDir: '/h/logs' };
  it.each([
    [{ target: 'app.js', args: [], env: [] }, { name: 'app', command: '/usr/bin/node', args: ['/srv/app/app.js'], cwd: '/srv/app', logs: { dir: '/h/logs' } }],
    [{ target: 'app.js', args: ['--port', '80'], env: ['A=1', 'B=x=y'], name: 'api', instances: 4 }, { name: 'api', command: '/usr/bin/node', args: ['/srv/app/app.js', '--port', '80'], env: { A: '1', B: 'x=y' }, instances: 4, cwd: '/srv/app', logs: { dir: '/h/logs' } }],
    [{ target: 'sleep', args: ['60'], env: [] }, { name: 'sleep', command: 'sleep', args: ['60'], cwd: '/srv/app', logs: { dir: '/h/logs' } }],
    [{ target: './bin/server', args: [], env: [] }, { name: 'server', command: '/srv/app/bin/server', cwd: '/srv/app', logs: { dir: '/h/logs' } }],
  ])('%j → a service', (a, spec) => expect(planStart(a, ctx)).toEqual({ kind: 'service', spec }));

  it.each(['services.yaml', 'conf.json'])('%s → the config file', (target) => {
    expect(planStart({ target, args: [], env: [] }, ctx)).toEqual({ kind: 'config', file: `/srv/app/${target}` });
  });

  it.each([
    [{ target: 'services.yaml', args: [], env: [], name: 'x' }, /--name apply to a script/],
    [{ target: 'services.yaml', args: [], env: [], instances: 2 }, /-i apply/],
    [{ target: 'missing.js', args: [], env: [] }, /there is no script/],
    [{ target: 'sleep', args: [], env: ['NOEQUALS'] }, /--env takes KEY=VALUE/],
    [{ target: 'sleep', args: [], env: [], name: 'bad name' }, /--name must be/],
  ])('%j is a usage error', (a, message) => {
    expect(() => planStart(a, ctx)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', exitCode: 2, message: expect.stringMatching(message) }));
  });

  it.each([
    ['app.mjs', 'app'],
    ['/usr/bin/sleep', 'sleep'],
    ['my server.cjs', 'my-server'],
    ['...', 'service'],
  ])('defaultName(%s) = %s', (t, n) => expect(defaultName(t)).toBe(n));

  it('parseEnv keeps everything after the first =', () => expect(parseEnv(['K=a=b', 'E='])).toEqual({ K: 'a=b', E: '' }));
});

describe('systemd unit', () => {
  it.each([
    ['plain/path-1.2', 'plain/path-1.2'],
    ['with space', '"with space"'],
    ['a"b', '"a\\"b"'],
    ['50%', '"50%%"'],
  ])('quoteWord(%s) = %s', (w, q) => expect(quoteWord(w)).toBe(q));

  it('a system unit runs as the user, a user unit is wanted by default.target', () => {
    const sys = unitText({ scope: 'system', node: '/usr/bin/node', bin: '/opt/libipc/bin.js', home: '/home/ann/.libipc', path: '/usr/bin:/bin', user: 'ann' });
    expect(sys).toContain('User=ann\n');
    expect(sys).toContain('ExecStart=/usr/bin/node /opt/libipc/bin.js daemon --resurrect\n');
    expect(sys).toContain('ExecStop=/usr/bin/node /opt/libipc/bin.js kill-daemon\n');
    expect(sys).toContain('Environment=LIBIPC_HOME=/home/ann/.libipc\n');
    expect(sys).toContain('WantedBy=multi-user.target');
    const user = unitText({ scope: 'user', node: '/usr/bin/node', bin: '/my bin/bin.js', home: '/h', path: '/usr/bin', user: 'ann' });
    expect(user).not.toContain('User=');
    expect(user).toContain('ExecStart=/usr/bin/node "/my bin/bin.js" daemon --resurrect');
    expect(user).toContain('WantedBy=default.target');
  });
});

describe('CPU and memory bookkeeping', () => {
  const s = (pid: number, cpuMs: number, at: number, rssBytes = 1000) => ({ pid, cpuMs, at, rssBytes });
  it.each([
    ['two samples 1 s apart, 500 ms of CPU', s(1, 100, 0), s(1, 600, 1000), undefined, 50],
    ['no earlier sample: the lifetime average', undefined, s(1, 2000, 0), 10_000 - 4000, 50],
    ['another process behind the pid, start unknown', s(2, 100, 0), s(1, 1000, 1000), undefined, null],
    ['gone', s(1, 1, 0), undefined, undefined, null],
  ] as const)('%s', (_what, prev, cur, started, cpu) => {
    const u = usageOf(prev, cur, started, 10_000);
    expect(u.cpu === null ? null : Math.round(u.cpu)).toBe(cpu);
    expect(u.rssBytes).toBe(cur ? 1000 : null);
  });

  it('samples only while looked at, and stops after idleMs', async () => {
    let reads = 0;
    const sampler = new UsageSampler(() => [7], { intervalMs: 20, idleMs: 60, read: (pid) => (reads++, { pid, cpuMs: reads * 10, rssBytes: 4096, at: performance.now() }) });
    expect(sampler.sampling).toBe(false);
    expect(sampler.look([7]).get(7)?.rssBytes).toBe(4096);
    expect(sampler.sampling).toBe(true);
    await expect.poll(() => sampler.sampling, { timeout: 5000, interval: 20 }).toBe(false);
    const after = reads;
    await new Promise((r) => setTimeout(r, 100));
    expect(reads).toBe(after);
    sampler.stop();
  });

  it.each([
    [null, '-', null, '-'],
    [0, '0.0%', 512, '512 B'],
    [99.6, '100%', 3 * 1024 * 1024, '3.0 MiB'],
    [1.25, '1.3%', 2048, '2.0 KiB'],
  ])('cpu %s → %s, rss %s → %s', (cpu, ct, rss, mt) => {
    expect(cpuText(cpu)).toBe(ct);
    expect(memText(rss)).toBe(mt);
  });
});

describe('wire format', () => {
  it.each([
    ['{"id":1,"cmd":"ps","args":{}}', { ok: true }],
    ['{"id":2,"cmd":"ps"}', { ok: true }],
    ['not json', { ok: false, message: 'a request is one line of JSON' }],
    ['{"id":3,"cmd":"PS","args":{}}', { ok: false, id: 3 }],
    ['{"id":4,"cmd":"ps","args":{},"extra":1}', { ok: false, id: 4 }],
    ['{"id":-1,"cmd":"ps"}', { ok: false, id: 0 }],
  ])('%s', (line, want) => expect(parseRequest(line)).toMatchObject(want));

  it('splits lines across chunks and stops a line that grows too long', () => {
    const lines: string[] = [];
    let overflow = 0;
    const feed = lineSplitter((l) => lines.push(l), () => overflow++, 10);
    feed('ab');
    feed('c\nde\nf');
    feed('g\n');
    expect(lines).toEqual(['abc', 'de', 'fg']);
    feed('0123456789ABC');
    expect(overflow).toBe(1);
  });
});

describe('the home folder', () => {
  const top = mkdtempSync(join(tmpdir(), 'libipc-home-'));
  afterAll(() => rmSync(top, { recursive: true, force: true }));
  it.each([
    ['a private folder', (d: string) => mkdirSync(d, { mode: 0o700 }), undefined],
    ['a symlink', (d: string) => (mkdirSync(`${d}.real`, { mode: 0o700 }), symlinkSync(`${d}.real`, d)), /symbolic link/],
    ['a folder others may enter', (d: string) => mkdirSync(d, { mode: 0o755 }), /chmod 700/],
  ])('%s', (_what, make, error) => {
    const dir = join(top, String(Math.random()).slice(2));
    make(dir);
    if (error) expect(() => checkPrivateDir(dir)).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_PERMISSION', message: expect.stringMatching(error) }));
    else expect(() => checkPrivateDir(dir)).not.toThrow();
  });

  it('LIBIPC_HOME places everything; the lock is an abstract name of this uid and home', () => {
    const h = daemonHome({ LIBIPC_HOME: '/x/home' });
    expect(h).toMatchObject({ dir: '/x/home', socket: '/x/home/daemon.sock', pidFile: '/x/home/daemon.pid', dump: '/x/home/dump.json', logs: '/x/home/logs' });
    expect(h.lockName).toMatch(new RegExp(`^\\0libipc\\.daemon\\.${process.getuid!()}\\.[0-9a-f]{16}$`));
    expect(daemonHome({ LIBIPC_HOME: '/y' }).lockName).not.toBe(h.lockName);
  });
});
