// Requests that fail while a 3-instance HTTP service is reloaded or restarted, under clients that never stop asking
// (each request on a new connection): Manager.reload with `listen` vs a plain restart of the same service, and vs
// the usual setup without `listen` (each instance on its own port behind nothing: a restart closes the port), and
// vs PM2's reload in cluster mode.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Manager } from '@libipc/supervisor';

const APP = new URL('./_reload-app.mjs', import.meta.url).pathname;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CLIENTS = 4;

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

function get(port) {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ok: res.statusCode === 200, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('error', () => resolve({ ok: false, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    // A request left unanswered (its process went away with it) counts as failed.
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
  });
}

/** Runs `op` while CLIENTS loops send requests; requests answered, failed, and the slowest answer. */
async function underLoad(ports, op) {
  let running = true;
  const out = { ok: 0, failed: 0, maxMs: 0 };
  const loops = Array.from({ length: CLIENTS }, async (_, i) => {
    while (running) {
      const r = await get(ports[i % ports.length]);
      if (r.ok) out.ok++;
      else out.failed++;
      out.maxMs = Math.max(out.maxMs, r.ms);
    }
  });
  await new Promise((r) => setTimeout(r, 200)); // the load is running before the operation starts
  await op();
  running = false;
  await Promise.all(loops);
  return out;
}

/** The same app in PM2 cluster mode (3 instances, wait_ready), `pm2.reload` under the same load. */
async function pm2Reload() {
  // PM2 reads PM2_HOME when it is loaded: a home of its own, so the bench never touches a user's PM2.
  const home = mkdtempSync(join(tmpdir(), 'libipc-bench-pm2-'));
  process.env.PM2_HOME = home;
  const pm2 = createRequire(import.meta.url)('pm2');
  const call = (fn, ...args) => new Promise((res, rej) => pm2[fn](...args, (err, out) => (err ? rej(err) : res(out))));
  await call('connect');
  const totals = { ok: 0, failed: 0, maxMs: 0 };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const port = await freePort();
      await call('start', { script: APP, name: 'web', instances: 3, exec_mode: 'cluster', wait_ready: true, listen_timeout: 10_000, env: { PORT: String(port) } });
      while (!(await get(port)).ok) await new Promise((r) => setTimeout(r, 10));
      const r = await underLoad([port], () => call('reload', 'web'));
      totals.ok += r.ok;
      totals.failed += r.failed;
      totals.maxMs = Math.max(totals.maxMs, r.maxMs);
      await call('delete', 'web');
    }
  } finally {
    await call('killDaemon').catch(() => {});
    pm2.disconnect();
    rmSync(home, { recursive: true, force: true });
  }
  const v = createRequire(import.meta.url)('pm2/package.json').version;
  console.log(`| PM2 ${v} reload, cluster mode (wait_ready) | ${totals.ok} | ${totals.failed} | ${totals.maxMs.toFixed(0)} |`);
}

async function scenario(label, shared, op) {
  const totals = { ok: 0, failed: 0, maxMs: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const m = new Manager();
    const ports = shared ? [await freePort()] : [await freePort(), await freePort(), await freePort()];
    const spec = (name, port) => ({ name, command: process.execPath, args: [APP], env: { PORT: String(port) }, readiness: 'ready', logs: 'ignore' });
    if (shared) await m.start({ ...spec('web', ports[0]), instances: 3, listen: ports });
    else for (let i = 0; i < 3; i++) await m.start(spec(`web-${i}`, ports[i]));
    const r = await underLoad(ports, () => op(m));
    totals.ok += r.ok;
    totals.failed += r.failed;
    totals.maxMs = Math.max(totals.maxMs, r.maxMs);
    await m.shutdown();
  }
  console.log(`| ${label} | ${totals.ok} | ${totals.failed} | ${totals.maxMs.toFixed(0)} |`);
}

console.log(`\n| 3 HTTP instances, ${CLIENTS} clients, ${ROUNDS} rounds | requests answered | failed | slowest ms |`);
console.log('| --- | ---: | ---: | ---: |');
await scenario('reload() with `listen` (one shared socket)', true, (m) => m.reload('web'));
await scenario('restart() with `listen` (all stop, then start)', true, (m) => m.restart('web'));
await scenario('restart() one by one, each instance on its own port', false, async (m) => {
  for (let i = 0; i < 3; i++) await m.restart(`web-${i}`);
});
await pm2Reload();
// PM2's client keeps handles open after disconnect(): end here.
process.exit(0);
