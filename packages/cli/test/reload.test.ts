// `libipc reload` through the daemon: a service of a config file with `listen`, its instances replaced under
// requests (exit 0), and a replacement that never gets ready (exit 1, the old instances keep serving).
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.js';
import { freePort } from '../../../test/helpers.js';
import { BIN, FIXTURES, cli, running } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'libipc-reload-'));
const env = { LIBIPC_HOME: join(dir, 'home'), LIBIPC_RUNTIME_DIR: join(dir, 'rt'), LIBIPC_SWEEP_MS: '0' };
afterAll(async () => {
  const r = await cli(['kill-daemon'], env);
  for (const pid of daemonsOf(env.LIBIPC_HOME)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  expect(r.code, r.stderr).toBe(0);
});

/** Live `libipc daemon` processes of a home (a daemon that outlived kill-daemon must not outlive the test). */
function daemonsOf(home: string): number[] {
  return readdirSync('/proc').filter((d) => {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      return cmd[1] === BIN && cmd[2] === 'daemon' && readFileSync(`/proc/${d}/environ`, 'utf8').split('\0').includes(`LIBIPC_HOME=${home}`) && running(Number(d));
    } catch {
      return false;
    }
  }).map(Number);
}


function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? `ok ${body}` : `status ${res.statusCode}`));
    });
    req.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
  });
}

async function pids(): Promise<number[]> {
  const r = await cli(['ps', '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ name: string; pid: number | null }>).filter((x) => x.name.startsWith('web.')).map((x) => x.pid!);
}

describe('libipc reload', () => {
  it('replaces each instance with no failed request (exit 0); a replacement that never gets ready → exit 1, old pids keep serving', async () => {
    const port = await freePort();
    const flag = join(dir, 'broken');
    const config = join(dir, 'libipc.yaml');
    writeFileSync(
      config,
      `services:\n  web:\n    command: [node, ${join(FIXTURES, 'http-app.mjs')}]\n    instances: 2\n    listen: ${port}\n    readiness: ready\n    startTimeoutMs: 2000\n    env: { PORT: ${port}, NOT_READY_FILE: ${flag} }\n`,
    );
    const started = await cli(['start', config], env);
    expect(started.code, started.stderr).toBe(0);
    const before = await pids();
    expect(before).toHaveLength(2);

    let asking = true;
    const answers: string[] = [];
    const client = (async () => {
      while (asking) answers.push(await get(port));
    })();
    const ok = await cli(['reload', 'web'], env);
    asking = false;
    await client;
    expect(ok.code, ok.stderr).toBe(0);
    const after = await pids();
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    expect(ok.stdout).toContain(`web.0: pid ${before[0]} → pid ${after[0]}`);
    expect(ok.stdout).toContain(`web.1: pid ${before[1]} → pid ${after[1]}`);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((a) => !a.startsWith('ok '))).toEqual([]);

    writeFileSync(flag, '');
    const bad = await cli(['reload', 'web'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/libipc reload: web failed: reload of web stopped at web\.0: .*did not write READY.*\(ERR_LIBIPC_RELOAD_FAILED\)/s);
    expect(await pids()).toEqual(after);
    for (let i = 0; i < 5; i++) expect(await get(port)).toMatch(/^ok \d+$/);

    const unknown = await cli(['reload', 'nope'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no service named 'nope'/);
  });

  it('reload <file> --env production: the new processes run with its env_production block; --env with a name is refused', async () => {
    const config = join(dir, 'envs.yaml');
    writeFileSync(
      config,
      `services:\n  envy:\n    command: [node, ${join(FIXTURES, 'sleeper.mjs')}]\n    instances: 2\n    env: { MODE: dev }\n    env_production: { MODE: prod }\n`,
    );
    const started = await cli(['start', config], env);
    expect(started.code, started.stderr).toBe(0);
    const modeOf = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((v) => v.startsWith('MODE='));
    const before = (JSON.parse((await cli(['ps', '--json'], env)).stdout) as Array<{ name: string; pid: number }>).filter((r) => r.name.startsWith('envy.'));
    expect(before.map((r) => modeOf(r.pid))).toEqual(['MODE=dev', 'MODE=dev']);
    const reloaded = await cli(['reload', config, '--env', 'production'], env);
    expect(reloaded.code, reloaded.stderr).toBe(0);
    const after = (JSON.parse((await cli(['ps', '--json'], env)).stdout) as Array<{ name: string; pid: number }>).filter((r) => r.name.startsWith('envy.'));
    expect(after.map((r) => r.pid).filter((p) => before.some((b) => b.pid === p))).toEqual([]);
    expect(after.map((r) => modeOf(r.pid))).toEqual(['MODE=prod', 'MODE=prod']);
    const byName = await cli(['reload', 'envy', '--env', 'production'], env);
    expect(byName.code).not.toBe(0);
    expect(byName.stderr).toContain('--env needs the config file');
    expect((await cli(['stop', 'envy'], env)).code).toBe(0);
  });

  it('config: listen is a port or a list of ports; anything else names the field', () => {
    const write = (body: string) => {
      const f = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(f, body);
      return f;
    };
    expect(loadConfig(write('services:\n  a: { command: sleep, listen: 3000 }\n'), { cwd: dir }).specs[0]!.listen).toEqual([3000]);
    expect(loadConfig(write('services:\n  a: { command: sleep, listen: [3000, 3001, 3000] }\n'), { cwd: dir }).specs[0]!.listen).toEqual([3000, 3001]);
    expect(() => loadConfig(write('services:\n  a: { command: sleep, listen: 0 }\n'), { cwd: dir })).toThrow(/services\.a\.listen: /);
    expect(() => loadConfig(write('services:\n  a: { command: sleep, listen: [70000] }\n'), { cwd: dir })).toThrow(/services\.a\.listen/);
  });
});
