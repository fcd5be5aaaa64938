// Where does a sleeping channel round trip spend its time? Channel asleep vs its own doorbell ping-pong vs a shm word
// ping-pong vs a socket, interleaved, with CPU time per trip (both processes).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { openSync, writeSync, constants as C, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { SharedMemory, wait, wake } from '@libipc/shm';
import { Channel } from '@libipc/typed-channel';
const bin = createRequire(import.meta.url)('node-gyp-build')(new URL('.', import.meta.url).pathname);
const [role, x, y] = process.argv.slice(2);
const N = 3000, W = 200;
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
if (role) {
  let base = 0; setImmediate(() => (base = cpu())); process.on('message', (m) => { if (m === 'stop') { process.send({ cpu: cpu() - base }); setTimeout(() => process.exit(0), 50); } });
  if (role === 'chan') {
    const req = new Channel(`${x}-req`, { mode: 'receiver', spinUs: 0 }); const rep = new Channel(`${x}-rep`, { spinUs: 0 });
    process.send('ready');
    for (;;) { const m = await req.recv(); if (m) await rep.send(m); }
  } else if (role === 'bell') {
    const bell = new bin.Doorbell(y); process.send('ready'); await once(process, 'message');
    const peer = openSync(x, C.O_WRONLY | C.O_NONBLOCK); const one = Buffer.from([1]);
    for (;;) { await new Promise((r) => bell.arm(r)); writeSync(peer, one); }
  } else if (role === 'word') {
    const mem = SharedMemory.open(x); const w = new Int32Array(mem.buffer); process.send('ready');
    for (let seen = 0; ;) { while (Atomics.load(w, 0) === seen) await wait(mem, 0, seen, 10000); seen = Atomics.add(w, 0, 1) + 1; wake(mem, 0); }
  } else if (role === 'sock') {
    net.createServer((s) => s.on('data', (d) => s.write(d))).listen(x, () => process.send('ready'));
  }
} else {
  const self = new URL(import.meta.url).pathname;
  const start = async (...a) => { const c = fork(self, a); await once(c, 'message'); return c; };
  const peers = {};
  { const n = `sx${process.pid}`; const req = new Channel(`${n}-req`, { spinUs: 0 }); const rep = new Channel(`${n}-rep`, { mode: 'receiver', spinUs: 0 });
    const c = await start('chan', n); await req.waitForRecv(1); const msg = Buffer.alloc(64, 1);
    peers.channel = { c, trip: async () => { await req.send(msg); await rep.recv(); } }; }
  { const a = `/dev/shm/sx-a-${process.pid}`, b = `/dev/shm/sx-b-${process.pid}`; const bell = new bin.Doorbell(a);
    const c = await start('bell', a, b); const peer = openSync(b, C.O_WRONLY | C.O_NONBLOCK); c.send('go'); const one = Buffer.from([1]);
    peers.doorbell = { c, trip: async () => { const got = new Promise((r) => bell.arm(r)); writeSync(peer, one); await got; } }; }
  { const n = `sxw${process.pid}`; const mem = SharedMemory.create(n, 4096); const w = new Int32Array(mem.buffer); const c = await start('word', n);
    peers.word = { c, trip: async () => { const p = Atomics.add(w, 0, 1) + 1; wake(mem, 0); while (Atomics.load(w, 0) === p) await wait(mem, 0, p, 10000); } }; }
  { const p = `/tmp/sx-${process.pid}.sock`; rmSync(p, { force: true }); const c = await start('sock', p); const s = net.connect(p); await once(s, 'connect');
    let res; s.on('data', () => res()); const msg = Buffer.alloc(64, 1);
    peers.socket = { c, trip: () => new Promise((r) => { res = r; s.write(msg); }) }; }
  const names = Object.keys(peers); const t = Object.fromEntries(names.map((k) => [k, []])); const cpuMine = Object.fromEntries(names.map((k) => [k, 0]));
  for (let i = 0; i < N + W; i++) for (const k of names) {
    const c0 = cpu(); const t0 = process.hrtime.bigint(); await peers[k].trip();
    if (i >= W) { t[k].push(Number(process.hrtime.bigint() - t0) / 1000); cpuMine[k] += cpu() - c0; }
  }
  for (const k of names) {
    peers[k].c.send('stop'); const [{ cpu: theirs }] = await once(peers[k].c, 'message');
    t[k].sort((a, b) => a - b);
    console.log(`${k.padEnd(9)} p50 ${t[k][N >> 1].toFixed(1)} µs; CPU per trip here ${(cpuMine[k] / N).toFixed(1)} µs; echo CPU per trip ${(theirs / N).toFixed(1)} µs`);
  }
  process.exit(0);
}
