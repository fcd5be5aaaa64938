// The libipc daemon against PM2's, command line against command line, side by side in one run:
//  1. `libipc start services.yaml` of N services (`sleep 1000`) / `pm2 start ecosystem.config.cjs` of the same N apps;
//  2. `libipc restart all` / `pm2 restart all` with the N running;
//  3. the daemon's own RSS per managed process (with N minus with none);
//  4. the first command, which starts the daemon.
//   node bench/src/daemon.mjs     (BENCH_N=100  BENCH_TRIALS=3)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, printTable } from './stats.mjs';

const N = Number(process.env.BENCH_N ?? 100);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 3);
const LIBIPC = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));
const PM2 = join(createRequire(import.meta.url).resolve('pm2/package.json'), '..', 'bin', 'pm2');
const pm2Version = createRequire(import.meta.url)('pm2/package.json').version;
const work = mkdtempSync(join(tmpdir(), 'libipc-bench-daemon-'));
// Private homes: the bench never touches a user's daemon or PM2.
const env = { ...process.env, LIBIPC_HOME: join(work, 'libipc'), LIBIPC_RUNTIME_DIR: join(work, 'rt'), LIBIPC_SWEEP_MS: '0', PM2_HOME: join(work, 'pm2'), NO_COLOR: '1' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timed(cmd, args) {
  const t0 = performance.now();
  execFileSync(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  return performance.now() - t0;
}
const libipc = (...args) => timed(process.execPath, [LIBIPC, ...args]);
const pm2 = (...args) => timed(process.execPath, [PM2, ...args]);
const libipcPid = () => JSON.parse(readFileSync(join(env.LIBIPC_HOME, 'daemon.pid'), 'utf8')).pid;
const pm2Pid = () => Number(readFileSync(join(env.PM2_HOME, 'pm2.pid'), 'utf8'));

const yaml = join(work, 'services.yaml');
writeFileSync(yaml, `services:\n${Array.from({ length: N }, (_, i) => `  s${i}:\n    command: [sleep, '1000']\n`).join('')}`);
const eco = join(work, 'ecosystem.config.cjs');
writeFileSync(eco, `module.exports = { apps: ${JSON.stringify(Array.from({ length: N }, (_, i) => ({ name: `s${i}`, script: 'sleep', args: ['1000'], interpreter: 'none', autorestart: true })))} };\n`);

const rows = { first: { libipc: [], pm2: [] }, start: { libipc: [], pm2: [] }, restart: { libipc: [], pm2: [] }, del: { libipc: [], pm2: [] } };
const memory = { libipc: [], pm2: [] };
try {
  // The first command of each starts its daemon.
  rows.first.libipc.push(libipc('start', 'sleep', '--name', 'warm', '--', '1000'));
  rows.first.pm2.push(pm2('start', 'sleep', '--name', 'warm', '--', '1000'));
  libipc('delete', 'warm');
  pm2('delete', 'warm');
  for (let t = 0; t < TRIALS; t++) {
    await sleep(500);
    const base = { libipc: rssKiB(libipcPid()), pm2: rssKiB(pm2Pid()) };
    rows.start.libipc.push(libipc('start', yaml));
    rows.start.pm2.push(pm2('start', eco));
    await sleep(1000);
    memory.libipc.push((rssKiB(libipcPid()) - base.libipc) / N);
    memory.pm2.push((rssKiB(pm2Pid()) - base.pm2) / N);
    rows.restart.libipc.push(libipc('restart', 'all'));
    rows.restart.pm2.push(pm2('restart', 'all'));
    rows.del.libipc.push(libipc('delete', 'all'));
    rows.del.pm2.push(pm2('delete', 'all'));
  }
} finally {
  try {
    libipc('kill-daemon');
  } catch {}
  try {
    pm2('kill');
  } catch {}
  rmSync(work, { recursive: true, force: true });
}

console.log(await machine());
const m = (xs) => Math.round(median(xs));
printTable(`Daemon commands, ${N} × sleep, median of ${TRIALS} (ms, the command line's whole run)`, [
  { what: `libipc ${'start services.yaml'}`, ms: m(rows.start.libipc) },
  { what: `PM2 ${pm2Version} start ecosystem.config.cjs`, ms: m(rows.start.pm2) },
  { what: 'libipc restart all', ms: m(rows.restart.libipc) },
  { what: 'PM2 restart all', ms: m(rows.restart.pm2) },
  { what: 'libipc delete all', ms: m(rows.del.libipc) },
  { what: 'PM2 delete all', ms: m(rows.del.pm2) },
  { what: 'libipc first command (starts the daemon)', ms: m(rows.first.libipc) },
  { what: 'PM2 first command (starts the daemon)', ms: m(rows.first.pm2) },
]);
printTable(`The daemon's own RSS per managed process (${N} running minus none), median of ${TRIALS}`, [
  { what: 'libipc daemon', 'KiB per process': median(memory.libipc) },
  { what: 'PM2 daemon', 'KiB per process': median(memory.pm2) },
], 1);
