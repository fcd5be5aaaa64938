// @libipc/group failover time: from SIGKILL of the primary to the first reply from the new primary on its
// shared-memory channels; and, as the reference a Node user would reach for, PM2 restarting a crashed
// process until it answers on its socket.
//   node bench/src/group.mjs
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { ServiceGroup } from '@libipc/group';
import { ServiceRegistry } from '@libipc/registry';
import { Channel } from '@libipc/typed-channel';
import { machine, printTable, summarize } from './stats.mjs';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 100);
const PM2_TRIALS = Number(process.env.BENCH_PM2_TRIALS ?? 20);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

async function libipcFailover({ ballastMb = 0, leases = true, trials = TRIALS } = {}) {
  const tag = `${process.pid}${ballastMb}${leases ? 'l' : 'x'}`;
  const registry = new ServiceRegistry(`bench-${tag}`);
  const group = new ServiceGroup(registry, {
    serviceName: 'pong',
    executable: process.execPath,
    args: [here('./_group-member.mjs')],
    replicas: 2,
    env: { BENCH_TAG: tag, BENCH_BALLAST_MB: String(ballastMb) },
    watchLeases: leases,
    // Respawn after 50 ms, so that the dead instance's respawn (a fork in this process) does not overlap the measurement.
    restart: { policy: 'always', backoff: { initialMs: 50, factor: 1, maxMs: 50 }, maxRestarts: 100_000, windowMs: 1000 },
  });
  await group.start();
  // A fast-failover client keeps a connection to every instance, so the new primary is already connected.
  const links = [0, 1].map((id) => ({
    ctrl: new Channel(`bench_ctrl_${tag}_${id}`),
    reply: new Channel(`bench_reply_${tag}_${id}`, { mode: 'receiver' }),
  }));
  const ready = async () => {
    for (const l of links) await l.ctrl.waitForRecv(1, { timeoutMs: 10_000 });
    while (group.aliveCount() < 2 || group.instances().some((i) => i.role !== 'primary' && i.role !== 'standby')) {
      await once(group, 'respawn');
    }
  };
  const samples = [];
  const detected = [];
  const ping = Buffer.alloc(64, 7);
  for (let i = 0; i < trials; i++) {
    await ready();
    const victim = group.primary();
    const failover = once(group, 'failover');
    const t0 = performance.now();
    process.kill(victim.pid, 'SIGKILL');
    const [{ primary }] = await failover;
    detected.push(performance.now() - t0);
    const link = links[Number(primary.split('.')[1])];
    await link.ctrl.send(ping, { timeoutMs: 5000 });
    const answer = await link.reply.recv({ timeoutMs: 5000 });
    if (!answer) throw new Error('no reply from the new primary');
    samples.push(performance.now() - t0);
  }
  await group.stop(1000);
  for (const l of links) (l.ctrl.close(), l.reply.close());
  registry.close();
  return { reply: summarize(samples), event: summarize(detected) };
}

// PM2 reads PM2_HOME when it is loaded: a home of its own, so the bench never touches a user's PM2.
const home = mkdtempSync(join(tmpdir(), 'libipc-bench-pm2-'));
process.env.PM2_HOME = home;
const pm2 = createRequire(import.meta.url)('pm2');

async function pm2Restart() {
  const call = (fn, ...args) => new Promise((res, rej) => pm2[fn](...args, (err, out) => (err ? rej(err) : res(out))));
  const socket = join(home, 'app.sock');
  await call('connect');
  await call('start', { script: here('./_pm2-app.mjs'), name: 'pong', autorestart: true, restart_delay: 0, max_restarts: 1_000_000, min_uptime: 0, env: { BENCH_SOCKET: socket } });
  const pidOf = async () => (await call('describe', 'pong'))[0]?.pid;
  const answers = () =>
    new Promise((resolve) => {
      const s = net.connect(socket);
      s.once('error', () => resolve(false));
      s.once('data', () => (s.destroy(), resolve(true)));
      s.once('connect', () => s.write('ping'));
    });
  const samples = [];
  for (let i = 0; i < PM2_TRIALS; i++) {
    while (!(await answers())) await new Promise((r) => setTimeout(r, 1));
    const pid = await pidOf();
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    // A PM2 user's client can only retry until the restarted process answers.
    while ((await pidOf()) === pid || !(await answers())) {
      if (performance.now() - t0 > 30_000) throw new Error(`PM2 did not restart the app within 30 s (trial ${i})`);
      await new Promise((r) => setTimeout(r, 1));
    }
    samples.push(performance.now() - t0);
  }
  await call('delete', 'pong');
  await call('killDaemon');
  pm2.disconnect();
  rmSync(home, { recursive: true, force: true });
  return summarize(samples);
}

console.log(`@libipc/group failover benchmark — ${await machine()}`);
// The same failover with the primary's death lease and with the exit event alone, for a primary that holds
// ~30 MB (a small Node process) and 300 MB of touched memory (its teardown delays the exit event).
const rows = [];
for (const ballastMb of [30, 300]) {
  for (const leases of [true, false]) {
    const r = await libipcFailover({ ballastMb, leases });
    const how = `${ballastMb} MB primary, ${leases ? 'death lease' : 'exit event only'}`;
    rows.push({ what: `libipc group: SIGKILL → 'failover' event (${how}, ${r.event.n} trials)`, 'p50 ms': r.event.p50, 'p99 ms': r.event.p99 });
    rows.push({ what: `libipc group: SIGKILL → reply from promoted standby (${how})`, 'p50 ms': r.reply.p50, 'p99 ms': r.reply.p99 });
  }
}
const theirs = await pm2Restart();
printTable('Crash of the serving process → first answer from a serving process (ms)', [
  ...rows,
  { what: `PM2 autorestart: SIGKILL → restarted process answers (${theirs.n} trials)`, 'p50 ms': theirs.p50, 'p99 ms': theirs.p99 },
], 2);
// PM2's client library keeps sockets to its daemon open: leave explicitly.
process.exit(0);
