// The daemon as an operator drives it, with real processes: detached services, control by name and pattern,
// adoption after a SIGKILL, save/resurrect, CPU and memory from /proc, the socket's safety, one daemon per home.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync, utimesSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { canSwitchUsers, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { byName, daemonEnv, daemonPid, daemonsOf, ps } from './daemon-support.js';
import { BIN, FIXTURES, cli, running, tempDir } from './support.js';

/** Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat. */
function statField(pid: number, n: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]);
}


describe('libipc daemon: services that outlive the terminal', () => {
  const env = daemonEnv();
  const config = join(FIXTURES, 'daemon-services.yaml');

  it('start of a config and of a script from a shell that exits: they keep running, detached', async () => {
    const sh = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile('sh', ['-c', `"${process.execPath}" "${BIN}" start "${config}" && "${process.execPath}" "${BIN}" start "${FIXTURES}sleeper.mjs" --name solo -i 2 --env GREETING=hi`], { env: { ...process.env, ...env, NO_COLOR: '1' } }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, out: stdout + stderr }),
      );
    });
    expect(sh.code, sh.out).toBe(0);
    expect(sh.out).toMatch(/db\s+running/);
    const rows = await ps(env);
    expect(rows.map((r) => r.name).sort()).toEqual(['api', 'db', 'solo.0', 'solo.1', 'worker.0', 'worker.1']);
    const daemon = daemonPid(env);
    expect(statField(daemon, 6)).toBe(daemon); // its own session: no terminal's hangup reaches it
    for (const r of rows) {
      expect(r.state).toBe('running');
      expect(running(r.pid!)).toBe(true);
      expect(statField(r.pid!, 6)).not.toBe(statField(process.pid, 6));
    }
    expect(readFileSync(`/proc/${byName(rows)['solo.1']!.pid}/environ`, 'utf8').split('\0')).toContain('GREETING=hi');
  });

  it('logs finds the daemon\'s services; flush empties their files', async () => {
    const solo = byName(await ps(env))['solo.0']!;
    const logs = await cli(['logs', 'solo.0', '--lines', '5'], env);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain(`sleeper ${solo.pid}`);
    const flush = await cli(['flush', 'solo'], env);
    expect(flush.code, flush.stderr).toBe(0);
    expect(flush.stdout).toContain('solo.0');
    expect((await cli(['logs', 'solo.0'], env)).stdout.trim()).toBe('');
  });

  it('stop, restart and delete by name and by pattern; restart keeps dependency order', async () => {
    const before = byName(await ps(env));
    const stop = await cli(['stop', 'worker*'], env);
    expect(stop.code, stop.stderr).toBe(0);
    let now = byName(await ps(env));
    expect([now['worker.0']!.state, now['worker.1']!.state, now.api!.state]).toEqual(['stopped', 'stopped', 'running']);
    expect(now.api!.pid).toBe(before.api!.pid);

    expect((await cli(['restart', 'worker'], env)).code).toBe(0);
    now = byName(await ps(env));
    expect([now['worker.0']!.state, now['worker.1']!.state]).toEqual(['running', 'running']);

    const old = now;
    const restart = await cli(['restart', 'db'], env);
    expect(restart.code, restart.stderr).toBe(0);
    now = byName(await ps(env));
    for (const n of ['db', 'api', 'worker.0', 'worker.1']) {
      expect(now[n]!.state).toBe('running');
      expect(now[n]!.pid).not.toBe(old[n]!.pid);
    }
    expect(now['solo.0']!.pid).toBe(old['solo.0']!.pid); // not a dependent: left alone
    // Dependents started after what they depend on: by their processes' start times (clock ticks).
    const started = (n: string) => statField(now[n]!.pid!, 22);
    expect(started('api')).toBeGreaterThanOrEqual(started('db'));
    expect(started('worker.0')).toBeGreaterThanOrEqual(started('api'));

    const del = await cli(['delete', 'solo'], env);
    expect(del.code, del.stderr).toBe(0);
    expect(Object.keys(byName(await ps(env)))).not.toContain('solo.0');
    expect(running(old['solo.0']!.pid!)).toBe(false);

    const none = await cli(['stop', 'nope'], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('ERR_LIBIPC_NOT_FOUND');
    const refused = await cli(['delete', 'db'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/api depend/);
    expect((await cli(['stop'], env)).code).toBe(2);
  });

  it('a daemon SIGKILLed: the next command starts one that adopts the same pids', async () => {
    const before = await ps(env);
    const old = daemonPid(env);
    process.kill(old, 'SIGKILL');
    const after = await ps(env);
    expect(daemonPid(env)).not.toBe(old);
    expect(after.map((r) => [r.name, r.pid, r.state])).toEqual(before.map((r) => [r.name, r.pid, r.state]));
    expect(daemonsOf(env.LIBIPC_HOME!)).toEqual([daemonPid(env)]);
  });

  it('CPU and RSS columns are those of /proc for the pid', async () => {
    const busy = await cli(['start', `${FIXTURES}busy.mjs`, '--name', 'spin'], env);
    expect(busy.code, busy.stderr).toBe(0);
    await ps(env); // the first look starts the sampler; the next one sees a second's worth of samples
    await expect
      .poll(async () => byName(await ps(env)).spin!.cpu ?? 0, { timeout: 20_000, interval: 1000 })
      .toBeGreaterThan(30);
    const rows = byName(await ps(env));
    for (const r of [rows.spin!, rows.db!]) {
      const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${r.pid}/status`, 'utf8'))![1]) * 1024;
      expect(Math.abs(r.rssBytes! - rss) / rss).toBeLessThan(0.3);
    }
    expect(rows.db!.cpu!).toBeLessThan(20);
    const table = await cli(['ps'], env);
    expect(table.stdout).toMatch(/NAME\s+STATE\s+PID\s+CPU\s+MEM\s+RESTARTS\s+UPTIME/);
    expect(table.stdout).toMatch(new RegExp(`spin\\s+running\\s+${rows.spin!.pid}\\s+\\d+(\\.\\d)?%\\s+[\\d.]+ MiB`));
    expect((await cli(['delete', 'spin'], env)).code).toBe(0);
  });

  it('a start that fails says why, with the last log lines, and exits 1', async () => {
    const dir = tempDir();
    const file = join(dir, 'crash.yaml');
    writeFileSync(file, `services:\n  crash:\n    command: [node, ${FIXTURES}crash-early.mjs]\n    readiness: ready\n    restart: never\n`);
    const r = await cli(['start', file], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/crash failed: .*ERR_LIBIPC_EXITED_EARLY/);
    expect(r.stderr).toContain('crash-early: cannot open the database (simulated)');
    expect((await cli(['delete', 'crash'], env)).code).toBe(0);
  });

  it('save, the daemon and every service killed, resurrect: the same services run', async () => {
    const before = await ps(env);
    expect((await cli(['save'], env)).code).toBe(0);
    const kd = await cli(['kill-daemon'], env);
    expect(kd.code, kd.stderr).toBe(0);
    expect(daemonsOf(env.LIBIPC_HOME!)).toEqual([]);
    for (const r of before) expect(running(r.pid!)).toBe(false);
    const res = await cli(['resurrect'], env);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    let after = await ps(env);
    expect(after.map((r) => [r.name, r.state])).toEqual(before.map((r) => [r.name, 'running']));

    // Harder: SIGKILL the daemon and every service, then resurrect.
    process.kill(daemonPid(env), 'SIGKILL');
    for (const r of after) process.kill(r.pid!, 'SIGKILL');
    const again = await cli(['resurrect'], env);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    after = await ps(env);
    expect(after.map((r) => [r.name, r.state])).toEqual(before.map((r) => [r.name, 'running']));
    expect(after.every((r) => running(r.pid!))).toBe(true);
  });

  it('refuses another uid on the socket', async (t) => {
    if (!canSwitchUsers) t.skip('needs root to run a client as another uid (setpriv)');
    const sock = join(env.LIBIPC_HOME!, 'daemon.sock');
    // The client (node builtins only) copied where uid 65534 may read it.
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const client = join(dir, 'daemon-connect.mjs');
    copyFileSync(`${FIXTURES}daemon-connect.mjs`, client);
    chmodSync(client, 0o644);
    const as65534 = (caps: string[]) =>
      execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...caps, process.execPath, client, sock], { encoding: 'utf8', timeout: 20_000 }).trim();
    // Without rights to the 0700 home it cannot even reach the socket…
    expect(as65534([])).toBe('error EACCES');
    // …and with them (CAP_DAC_OVERRIDE), the daemon reads its uid (SO_PEERCRED) and says no.
    expect(as65534(['--inh-caps=+dac_override', '--ambient-caps=+dac_override'])).toMatch(/^reply .*"ok":false.*ERR_LIBIPC_PERMISSION/);
    expect(readFileSync(join(env.LIBIPC_HOME!, 'daemon.log'), 'utf8')).toMatch(/refused a connection of uid 65534/);
  });
});

describe('libipc daemon: one per home, never through what a dead one left', () => {
  it('two concurrent first commands end with one daemon', async () => {
    const env = daemonEnv(false, onTestFinished);
    const [a, b] = await Promise.all([cli(['start', 'sleep', '--name', 'a', '--', '600'], env), cli(['start', 'sleep', '--name', 'b', '--', '600'], env)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const rows = await ps(env);
    expect(rows.map((r) => r.name).sort()).toEqual(['a', 'b']);
    await expect.poll(() => daemonsOf(env.LIBIPC_HOME!), { timeout: 10_000 }).toEqual([daemonPid(env)]);
  });

  it('a stale socket and pid file are replaced; the sweep removes what crashed processes left in /dev/shm', async () => {
    const env = daemonEnv(true, onTestFinished);
    mkdirSync(env.LIBIPC_HOME!, { mode: 0o700 });
    // A socket file nobody listens on (a daemon's that died) and a pid file naming a process that is not a daemon.
    execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(join(env.LIBIPC_HOME!, 'daemon.sock'))})`]);
    writeFileSync(join(env.LIBIPC_HOME!, 'daemon.pid'), `${JSON.stringify({ pid: process.pid, startTime: '1' })}\n`);
    const dead = uniqueName('sweep');
    const crashed = spawnNode(`${FIXTURES}channel.mjs`, [dead, 'receive']);
    await crashed.line('ready');
    await crashed.kill('SIGKILL');
    expect(shmObjects(dead).length).toBeGreaterThan(0);
    // The sweep leaves objects changed in the last minute alone (a hand-over may be under way): make these old.
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const f of shmObjects(dead)) utimesSync(`/dev/shm/${f}`, hourAgo, hourAgo);
    const freshName = uniqueName('fresh');
    const fresh = spawnNode(`${FIXTURES}channel.mjs`, [freshName, 'receive']);
    await fresh.line('ready');
    await fresh.kill('SIGKILL');
    onTestFinished(() => {
      for (const f of shmObjects(freshName)) rmSync(`/dev/shm/${f}`, { force: true });
    });
    const r = await cli(['start', 'sleep', '--name', 'nap', '--', '600'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(daemonPid(env)).not.toBe(process.pid);
    expect(shmObjects(dead)).toEqual([]);
    expect(readFileSync(join(env.LIBIPC_HOME!, 'daemon.log'), 'utf8')).toContain(`sweep: removed libipc.chan.${dead}`);
    // Abandoned as well, but just now: left for `libipc shm clean`.
    expect(shmObjects(freshName).length).toBeGreaterThan(0);
    await ps(env);
  });

  it('a home that is a symlink is refused', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'real'), { mode: 0o700 });
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    const r = await cli(['start', 'sleep', '--', '600'], { LIBIPC_HOME: join(dir, 'link'), LIBIPC_RUNTIME_DIR: join(dir, 'rt') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/symbolic link.*ERR_LIBIPC_PERMISSION/);
    expect(existsSync(join(dir, 'real', 'daemon.sock'))).toBe(false);
  });

  it('ping without a daemon exits 1 and starts none', async () => {
    const env = daemonEnv(false, onTestFinished);
    const r = await cli(['ping'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('no libipc daemon runs');
    expect(existsSync(join(env.LIBIPC_HOME!, 'daemon.sock'))).toBe(false);
  });
});

describe('libipc startup', () => {
  it('prints a valid systemd unit; --install writes it, unstartup removes it', async () => {
    const dir = tempDir();
    const env = { LIBIPC_HOME: join(dir, 'home') };
    const r = await cli(['startup', 'systemd', '--user'], env);
    expect(r.code, r.stderr).toBe(0);
    const unit = join(dir, 'libipc.service');
    writeFileSync(unit, r.stdout);
    let verified = false;
    try {
      execFileSync('systemd-analyze', ['verify', '--user', unit], { stdio: 'pipe', timeout: 30_000 });
      verified = true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      // Without systemd-analyze, or without a user manager to ask (a container): the fields are checked below.
      if (e.code !== 'ENOENT' && !/Failed to (connect|initialize)|bus|No such file/i.test(e.stderr?.toString() ?? '')) throw new Error(e.stderr?.toString());
    }
    const fields = Object.fromEntries(r.stdout.split('\n').filter((l) => /^\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(r.stdout).toMatch(/^\[Unit\]\n/);
    expect(r.stdout).toContain('\n[Service]\n');
    expect(r.stdout).toContain('\n[Install]\n');
    expect(fields.ExecStart).toBe(`${process.execPath} ${BIN} daemon --resurrect`);
    expect(fields.WantedBy).toBe('default.target');
    expect(r.stdout).toContain(`Environment=LIBIPC_HOME=${env.LIBIPC_HOME}`);
    expect(typeof verified).toBe('boolean');

    const install = await cli(['startup', 'systemd', '--system', '--install', '--unit-dir', join(dir, 'units')], env);
    expect(install.code, install.stderr).toBe(0);
    const written = readdirSync(join(dir, 'units'));
    expect(written).toHaveLength(1);
    expect(readFileSync(join(dir, 'units', written[0]!), 'utf8')).toMatch(/^User=\S+$/m);
    const un = await cli(['unstartup', 'systemd', '--system', '--unit-dir', join(dir, 'units')], env);
    expect(un.code, un.stderr).toBe(0);
    expect(readdirSync(join(dir, 'units'))).toEqual([]);
    expect((await cli(['startup', 'upstart'], env)).code).toBe(1);
  });
});
