//   node node_modules/@libipc/process/examples/supervise.mjs   (installed from npm)
//   node packages/process/examples/supervise.mjs                (in the repository, after building)
// Starts a service that crashes twice and then stays up, watches the supervisor restart it with backoff, then
// stops it. The same file plays the service (with the argument 'service').
import { ManagedProcess, ready, spawn, shutdown, waitForReady } from '@libipc/process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [role, marker] = process.argv.slice(2);
if (role === 'service') {
  // Crash on the first two runs (the marker file counts them), then report READY and serve.
  const runs = existsSync(marker) ? Number(readFileSync(marker, 'utf8')) : 0;
  writeFileSync(marker, String(runs + 1));
  if (runs < 2) process.exit(1);
  ready();
  setInterval(() => {}, 1 << 30);
} else {
  // 1. One child, by hand: spawn, wait for READY on its ready fd, shut it down gracefully.
  const marker1 = join(tmpdir(), `libipc-example-${process.pid}-a`);
  writeFileSync(marker1, '2');
  const h = spawn('example', process.execPath, [process.argv[1], 'service', marker1]);
  await waitForReady(h, 10_000);
  console.log(`spawned pid ${h.pid}, ready; shutting down:`, await shutdown(h, 3000));

  // 2. A managed process with a restart policy.
  const marker2 = join(tmpdir(), `libipc-example-${process.pid}-b`);
  const svc = new ManagedProcess({
    name: 'example',
    command: process.execPath,
    args: [process.argv[1], 'service', marker2],
    readiness: 'ready',
    restart: { policy: 'on-failure', backoff: { initialMs: 100, factor: 2, maxMs: 2000, jitter: 0.1 }, maxRestarts: 5, windowMs: 60_000 },
  });
  svc.on('state', ({ from, to, reason }) => console.log(`${from} → ${to}: ${reason}`));
  await svc.start().catch((err) => console.log(`first start failed: ${err.code}`));
  // The first run crashed before READY; the policy restarts it. Wait until it is up.
  while (svc.state !== 'running') await new Promise((r) => svc.once('state', r));
  console.log(svc.status());
  console.log('stopped:', await svc.stop());
  rmSync(marker1, { force: true });
  rmSync(marker2, { force: true });
}
