// @libipc/supervisor against PM2, side by side in one run:
//  1. start and stop 100 and 500 trivial processes (`sleep 1000`): time until all are started, until all are stopped;
//  2. the manager's own RSS per managed process (libipc: a Manager alone in a process; PM2: its daemon);
//  3. SIGKILL of a service → the manager reports it restarted and ready / a client gets an answer from it.
//   node bench/src/supervisor.mjs     (BENCH_SIZES=100,500  BENCH_TRIALS=50  BENCH_PM2_TRIALS=20)
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Manager } from '@libipc/supervisor';
import { machine, printTable, summarize } from './stats.mjs';

const SIZES = (process.env.BENCH_SIZES ?? '100,500').split(',').map(Number);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 50);
const PM2_TRIALS = Number(process.env.BENCH_PM2_TRIALS ?? 20);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'libipc-bench-sup-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssOf = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

function libipcStartStop(n, logs) {
  const r = spawnSync(process.execPath, ['--expose-gc', here('./_supervisor-host.mjs'), String(n), logs, join(work, `logs-${n}`)], { encoding: 'utf8' });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`supervisor host failed: ${r.stderr}`);
  return JSON.parse(line.slice(7));
}

// PM2 reads PM2_HOME when it is loaded: a home of its own, so the bench never touches a user's PM2.
const home = join(work, 'pm2');
process.env.PM2_HOME = home;
const pm2 = createRequire(import.meta.url)('pm2');
const pm2Version = createRequire(import.meta.url)('pm2/package.json').version;
const call = (fn, ...args) => new Promise((res, rej) => pm2[fn](...args, (err, out) => (err ? rej(err) : res(out))));
const daemonPid = () => Number(readFileSync(join(home, 'pm2.pid'), 'utf8'));

async function pm2StartStop(n) {
  await call('connect');
  // Warm the daemon up with one app, as for libipc.
  await call('start', { name: 'warm', script: 'sleep', args: ['1000'], interpreter: 'none', autorestart: true });
  await call('delete', 'all');
  await sleep(500);
  const base = rssOf(daemonPid());
  const apps = Array.from({ length: n }, (_, i) => ({ name: `p${i}`, script: 'sleep', args: ['1000'], interpreter: 'none', autorestart: true }));
  let t0 = performance.now();
  await call('start', apps);
  const startMs = performance.now() - t0;
  await sleep(500);
  const up = rssOf(daemonPid());
  t0 = performance.now();
  await call('delete', 'all');
  const stopMs = performance.now() - t0;
  await call('killDaemon');
  pm2.disconnect();
  return { n, base, up, startMs, stopMs };
}

/** A client that retries until the service answers a ping, as a PM2 user's client must. */
function answers(socket) {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.once('error', () => done(false));
    s.once('close', () => done(false));
    s.once('data', () => done(true));
    s.once('connect', () => s.write('ping'));
  });
}

async function libipcCrash() {
  const socket = join(work, 'sup.sock');
  const m = new Manager();
  await m.start({
    name: 'pong',
    command: process.execPath,
    args: [here('./_supervisor-app.mjs')],
    env: { BENCH_SOCKET: socket },
    readiness: 'ready',
    logs: 'ignore',
    restart: { policy: 'always', backoff: { initialMs: 0, factor: 1, maxMs: 0 }, maxRestarts: 1_000_000, windowMs: 1000 },
  });
  const event = [];
  const answer = [];
  for (let i = 0; i < TRIALS; i++) {
    const pid = m.status('pong').pid;
    const ready = once(m, 'ready');
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    await ready;
    event.push(performance.now() - t0);
    while (!(await answers(socket))) await sleep(1);
    answer.push(performance.now() - t0);
  }
  await m.shutdown();
  return { event: summarize(event), answer: summarize(answer) };
}

async function pm2Crash() {
  const socket = join(work, 'pm2.sock');
  await call('connect');
  await call('start', { script: here('./_pm2-app.mjs'), name: 'pong', autorestart: true, restart_delay: 0, max_restarts: 1_000_000, min_uptime: 0, env: { BENCH_SOCKET: socket } });
  const pidOf = async () => (await call('describe', 'pong'))[0]?.pid;
  const samples = [];
  for (let i = 0; i < PM2_TRIALS; i++) {
    while (!(await answers(socket))) await sleep(1);
    const pid = await pidOf();
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    while ((await pidOf()) === pid || !(await answers(socket))) {
      if (performance.now() - t0 > 30_000) throw new Error(`PM2 did not restart the app within 30 s (trial ${i})`);
      await sleep(1);
    }
    samples.push(performance.now() - t0);
  }
  await call('delete', 'all');
  await call('killDaemon');
  pm2.disconnect();
  return summarize(samples);
}

console.log(`@libipc/supervisor benchmark — ${await machine()}`);
const rows = [];
const memory = [];
const grown = { ignore: [], files: [], pm2: [] };
for (const n of SIZES) {
  const ours = libipcStartStop(n, 'ignore');
  const oursFiles = libipcStartStop(n, 'files');
  const theirs = await pm2StartStop(n);
  rows.push(
    { what: `libipc Manager, ${n} × sleep (logs 'ignore')`, 'start all ms': ours.startMs, 'stop all ms': ours.stopMs },
    { what: `libipc Manager, ${n} × sleep (logs to files)`, 'start all ms': oursFiles.startMs, 'stop all ms': oursFiles.stopMs },
    { what: `PM2 ${pm2Version}, ${n} × sleep (logs to files)`, 'start all ms': theirs.startMs, 'stop all ms': theirs.stopMs },
  );
  const per = (r) => (r.up - r.base) / n;
  grown.ignore.push([n, ours.up - ours.base]);
  grown.files.push([n, oursFiles.up - oursFiles.base]);
  grown.pm2.push([n, theirs.up - theirs.base]);
  memory.push(
    { what: `libipc Manager (logs 'ignore'), ${n} processes`, 'base RSS MiB': ours.base / 1024, 'RSS MiB': ours.up / 1024, 'KiB per process': per(ours) },
    { what: `libipc Manager (logs to files), ${n} processes`, 'base RSS MiB': oursFiles.base / 1024, 'RSS MiB': oursFiles.up / 1024, 'KiB per process': per(oursFiles) },
    { what: `PM2 daemon, ${n} processes`, 'base RSS MiB': theirs.base / 1024, 'RSS MiB': theirs.up / 1024, 'KiB per process': per(theirs) },
  );
}
printTable('Start and stop N trivial processes (all at once)', rows, 0);
printTable("The manager's own memory (RSS) per managed process", memory, 1);
if (SIZES.length >= 2) {
  // The slope between the smallest and largest N: what one more process costs, without fixed costs that grow once
  // with any burst of work (V8's young generation grows to its maximum, malloc arenas).
  const slope = (pts) => (pts.at(-1)[1] - pts[0][1]) / (pts.at(-1)[0] - pts[0][0]);
  const [a, b] = [SIZES[0], SIZES.at(-1)];
  printTable(`Marginal RSS per managed process (slope between ${a} and ${b} processes)`, [
    { what: "libipc Manager (logs 'ignore')", 'KiB per process': slope(grown.ignore), 'vs PM2': slope(grown.ignore) / slope(grown.pm2) },
    { what: 'libipc Manager (logs to files)', 'KiB per process': slope(grown.files), 'vs PM2': slope(grown.files) / slope(grown.pm2) },
    { what: 'PM2 daemon (logs to files)', 'KiB per process': slope(grown.pm2), 'vs PM2': 1 },
  ], 2);
}
const crashOurs = await libipcCrash();
const crashTheirs = await pm2Crash();
printTable('SIGKILL of a service → restarted and ready (ms)', [
  { what: `libipc Manager: SIGKILL → 'ready' event (READY on the fd) (${crashOurs.event.n} trials)`, 'p50 ms': crashOurs.event.p50, 'p99 ms': crashOurs.event.p99 },
  { what: `libipc Manager: SIGKILL → a client gets an answer (${crashOurs.answer.n} trials)`, 'p50 ms': crashOurs.answer.p50, 'p99 ms': crashOurs.answer.p99 },
  { what: `PM2 autorestart: SIGKILL → a client gets an answer (${crashTheirs.n} trials)`, 'p50 ms': crashTheirs.p50, 'p99 ms': crashTheirs.p99 },
], 2);
rmSync(work, { recursive: true, force: true });
// PM2's client library keeps sockets to its daemon open: leave explicitly.
process.exit(0);
