// `libipc dashboard` without a browser: its security rules (token, origin, host, no action through GET, the
// --host rule), its API and event stream under abuse (many entries, pages that vanish mid-stream, Ctrl-C with
// pages open), and stores that are missing or locked.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { SqliteStore } from '@libipc/supervisor/sqlite';
import { describe, expect, it } from 'vitest';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { startDashboard } from './dashboard-support.js';
import { FIXTURES, cli, libipc, start, tempDir } from './support.js';

const dir = tempDir();

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** One HTTP request with exactly these headers (fetch would not let a test set Host). */
function request(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens the event stream; resolves once its first message (the whole picture) arrived. */
function openStream(url: string): Promise<{ res: IncomingMessage; text: () => string; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}api/events`, (res) => {
      let text = '';
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        if (text.includes('event: state')) resolve({ res, text: () => text, ended });
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end();
  });
}

async function state(url: string): Promise<Record<string, any>> {
  const r = await request(`${url}api/state`);
  expect(r.status).toBe(200);
  return JSON.parse(r.body) as Record<string, any>;
}

describe('libipc dashboard: security', () => {
  it('refuses --host 0.0.0.0 without a token (usage error, exit 2)', async () => {
    const r = await cli(['dashboard', '--host', '0.0.0.0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--host 0\.0\.0\.0 .*--token/);
    expect(r.stdout).toBe('');
    const bad = await cli(['dashboard', '--token', 'has space']);
    expect(bad.code).toBe(2);
  });

  it('acts only on a same-origin POST with the token; never on GET; answers only to its own Host', async () => {
    const store = join(dir, 'absent', 'none.db');
    mkdirSync(join(dir, 'absent'));
    const token = 'test-token-0123456789';
    const d = await startDashboard(['--store', store, '--token', token, '--domain', uniqueName('sec')]);
    try {
      expect(d.token).toBe(token);
      const host = new URL(d.url).host;
      const s = await state(d.url);
      // A missing store is waited for, never created.
      expect(s.services.stores[0].problem).toMatch(/no store at/);
      expect(existsSync(store)).toBe(false);
      const action = `${d.url}api/stores/${s.services.stores[0].id as string}/services/web/restart`;
      const good = { 'x-libipc-token': token, origin: `http://${host}` };

      expect((await request(action)).status).toBe(405);
      expect((await request(action, { headers: { 'x-libipc-token': token } })).status).toBe(405); // GET with the token: still no
      expect((await request(action, { method: 'POST' })).status).toBe(403);
      expect((await request(action, { method: 'POST', headers: { 'x-libipc-token': 'wrong' } })).status).toBe(403);
      expect((await request(action, { method: 'POST', headers: { ...good, origin: 'http://evil.example' } })).status).toBe(403);
      expect((await request(action, { method: 'POST', headers: { ...good, origin: 'null' } })).status).toBe(403);
      expect((await request(action, { method: 'POST', headers: { ...good, 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
      // DNS rebinding: a hostile name pointing at 127.0.0.1 gets nothing, not even a read.
      expect((await request(action, { method: 'POST', headers: { ...good, host: `evil.example:${new URL(d.url).port}` } })).status).toBe(403);
      expect((await request(`${d.url}api/state`, { headers: { host: `evil.example:${new URL(d.url).port}` } })).status).toBe(403);
      // A cookie is not a token.
      expect((await request(action, { method: 'POST', headers: { cookie: `token=${token}`, origin: `http://${host}` } })).status).toBe(403);
      // A preflight is never granted.
      const pre = await request(action, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      // Past the checks (the token in a header, or as a bearer): no run holds this store, so there is nothing to act on.
      const through = await request(action, { method: 'POST', headers: good });
      expect(through.status).toBe(404);
      expect((await request(action, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
      const page = await request(d.url);
      expect(page.status).toBe(200);
      expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
      expect(page.headers['x-frame-options']).toBe('DENY');
      expect((await request(`${d.url}vendor/uPlot.esm.js`)).status).toBe(200);
      expect((await request(`${d.url}../package.json`)).status).toBe(404);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});

describe('libipc dashboard: under abuse', () => {
  it('serves many entries, drops vanished pages without leaks, and stops on Ctrl-C with pages open', async () => {
    const domain = uniqueName('many');
    const svc = spawnNode(`${FIXTURES}many.mjs`, [domain, '600']);
    await svc.line('registered');
    const d = await startDashboard(['--domain', domain, '--store', join(dir, 'nostore.db')]);
    try {
      const started = Date.now();
      const s = await state(d.url);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(s.registry.entries).toHaveLength(600);

      // 30 pages come and go mid-stream: none stays counted, and the server still answers.
      const streams = await Promise.all(Array.from({ length: 30 }, () => openStream(d.url)));
      expect((await state(d.url)).pages).toBe(30);
      for (const st of streams) st.res.destroy();
      await expect.poll(async () => (await state(d.url)).pages, { timeout: 5_000 }).toBe(0);

      // A change is pushed to an open page: the entries leave (SIGTERM clears them).
      const open = await openStream(d.url);
      await svc.kill('SIGTERM');
      await expect.poll(() => open.text(), { timeout: 5_000 }).toMatch(/event: section\ndata: \{"name":"registry"/);
      // Ctrl-C with a page open: the stream ends, the dashboard exits 0.
      expect(await d.stop()).toBe(0);
      await open.ended;
    } finally {
      await svc.kill();
      if (d.child.exitCode === null) await d.stop();
    }
    expect(shmObjects(domain)).toEqual([]);
  });

  it('reads a store that is locked by another process once the lock is gone, without stalling', async () => {
    const path = join(dir, 'locked.db');
    new SqliteStore(path).close(); // an empty supervisor store
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (p: string) => { exec(s: string): void; close(): void };
    const holder = new Database(path);
    holder.exec('BEGIN EXCLUSIVE');
    const d = await startDashboard(['--store', path, '--domain', uniqueName('lock')]);
    try {
      const t0 = Date.now();
      const s = await state(d.url);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(s.services.stores[0].problem).toMatch(/locked/);
      holder.exec('ROLLBACK');
      await expect.poll(async () => (await state(d.url)).services.stores[0].problem, { timeout: 5_000 }).toBeNull();
    } finally {
      holder.close();
      expect(await d.stop()).toBe(0);
    }
  });
});

describe('libipc dashboard: CPU and memory', () => {
  it('shows each running service’s CPU and resident memory, as /proc reports them', async () => {
    const rt = join(dir, 'rt-usage');
    mkdirSync(rt);
    const config = join(dir, 'usage.yaml');
    writeFileSync(config, ['services:', '  nap:', `    command: ${process.execPath}`, `    args: [${JSON.stringify(join(FIXTURES, 'sleeper.mjs'))}]`, '    readiness: ready', ''].join('\n'));
    const store = join(dir, 'usage.db');
    const run = start(libipc('run', config, '--store', store), { env: { LIBIPC_RUNTIME_DIR: rt } });
    const d = await startDashboard(['--store', store, '--domain', uniqueName('usage')]);
    try {
      await run.waitFor('all 1 service(s) started');
      let row: { pid: number; rssBytes: number; cpu: number } | undefined;
      // The page's figure is sampled once a second: it follows /proc, eventually (a young Node process grows fast,
      // so a sample a second old may be far off). Same order of size, not kB, not pages.
      const ratio = async () => {
        row = (await state(d.url)).services.services.find((s: { name: string; rssBytes: unknown }) => s.name === 'nap' && typeof s.rssBytes === 'number');
        if (!row) return 0;
        const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${row.pid}/status`, 'utf8'))![1]);
        return row.rssBytes / (kb * 1024);
      };
      await expect.poll(ratio, { timeout: 20_000, interval: 500 }).toBeGreaterThan(0.5);
      expect(await ratio()).toBeLessThan(2);
      if (!row) throw new Error('no row');
      expect(row.cpu).toBeGreaterThanOrEqual(0);
    } finally {
      expect(await d.stop()).toBe(0);
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(0);
    }
  });
});

describe('libipc dashboard: restart triggers', () => {
  it('shows what restarted a service (trigger and reason) in its row', async () => {
    const rt = join(dir, 'rt-trigger');
    mkdirSync(rt);
    const config = join(dir, 'trigger.yaml');
    writeFileSync(config, ['services:', '  tock:', `    command: ${process.execPath}`, `    args: [${JSON.stringify(join(FIXTURES, 'sleeper.mjs'))}]`, '    readiness: ready', "    cronRestart: '* * * * * *'", ''].join('\n'));
    const store = join(dir, 'trigger.db');
    const run = start(libipc('run', config, '--store', store), { env: { LIBIPC_RUNTIME_DIR: rt } });
    const d = await startDashboard(['--store', store, '--domain', uniqueName('trigger')]);
    try {
      await run.waitFor('all 1 service(s) started');
      const note = async () => (await state(d.url)).services.services.find((s: { name: string }) => s.name === 'tock')?.restartNote ?? null;
      await expect.poll(note, { timeout: 20_000, interval: 200 }).toMatch(/^restart \(cron\): '\* \* \* \* \* \*' fired at /);
      expect(readFileSync(join(FIXTURES, '../../static/dashboard/app.js'), 'utf8')).toContain('s.note ?? s.restartNote ?? s.reason');
    } finally {
      expect(await d.stop()).toBe(0);
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(0);
    }
  });
});
