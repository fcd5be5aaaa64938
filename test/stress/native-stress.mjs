#!/usr/bin/env node
// native-stress.mjs [--seconds N]: runs the native core's worst cases in rounds until the time is up, each in a
// child process with a hang bound, and prints how many rounds ran, crashed (died of a signal) or hung. Exits 1
// on any crash, hang or failed check. Run by .ci/sanitize under AddressSanitizer/UBSan; runs as well without.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('../../', import.meta.url).pathname;
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 120);
const require = createRequire(`${root}packages/shm/package.json`);
const shm = require('@libipc/shm');

const fixture = (pkg, file) => `${root}packages/${pkg}/test/fixtures/${file}`;
const unique = (p) => `stress-${p}-${process.pid}-${randomBytes(3).toString('hex')}`;
const HANG_MS = 90_000;

/** Runs node <args> with a hang bound; resolves { code, signal, out, hung }. */
function run(args, env = {}, hangMs = HANG_MS) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, hangMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal: hung ? null : signal, hung, out, err });
    });
  });
}

const json = (out) => JSON.parse(out.split('\n').find((l) => l.startsWith('{')) ?? 'null');

const scenarios = {
  /** Thousands of waits on one word, woken all at once, then timed waits; both backends. */
  async waits(round) {
    const env = round % 2 ? { LIBIPC_WAIT_BACKEND: 'threads' } : {};
    const r = await run([fixture('shm', 'burst.mjs'), unique('w'), '4000'], env);
    const rep = r.code === 0 ? json(r.out) : null;
    return { ...r, failed: rep?.settled !== 4000 || rep?.second !== 4000 ? `settled ${rep?.settled}` : undefined };
  },
  /** Workers ending and terminated with exit watches, locks and waits pending, and mid-send. */
  async workers(round) {
    const r1 = await run([fixture('shm', 'worker-teardown.mjs'), round % 2 ? 'ends' : 'terminate', unique('wt')]);
    if (r1.code !== 0 || r1.hung) return r1;
    const r2 = await run([fixture('shm', 'worker-lock.mjs'), unique('wl')]);
    if (r2.code !== 0 || r2.hung) return r2;
    const r3 = await run([fixture('typed-channel', 'worker-send-lock.mjs'), unique('ws')]);
    return { ...r3, failed: r3.code === 0 && !/sent=true got=after/.test(r3.out) ? r3.out : undefined };
  },
  /** Workers terminated at random instants while they start waits and lock attempts (often mid native call). */
  async terminations() {
    const r = await run([fixture('shm', 'terminate-storm.mjs'), unique('ts'), '40']);
    return { ...r, failed: r.code === 0 && !/^ok 40$/m.test(r.out) ? r.out : undefined };
  },
  /** 4 processes contending one RobustMutex with lock(), tryLock() and lockSync(): no rejection, exclusion holds. */
  async mutex() {
    const name = unique('m');
    const mem = shm.SharedMemory.create(name, 4096);
    shm.RobustMutex.init(mem, 0);
    try {
      const rs = await Promise.all(Array.from({ length: 4 }, () => run([fixture('shm', 'contend.mjs'), name, '1500'])));
      const bad = rs.find((r) => r.code !== 0 || r.hung);
      if (bad) return bad;
      const reps = rs.map((r) => json(r.out));
      const total = reps.reduce((n, x) => n + x.acquired, 0);
      const rejections = reps.flatMap((x) => x.rejections);
      const counter = new DataView(mem.buffer).getUint32(64, true);
      return { code: 0, failed: rejections.length || counter !== total ? `rejections ${rejections.length}, counter ${counter} != ${total}` : undefined };
    } finally {
      mem.close();
      shm.SharedMemory.unlink(name);
    }
  },
  /** 8 senders contending one channel, 2 receivers checking every message (checksums, order, count). */
  async channel() {
    const name = unique('c');
    const channel = { capacity: 32 };
    const recv = ['a', 'b'].map(() => run([fixture('typed-channel', 'receiver.mjs'), JSON.stringify({ name, senders: 8, channel })]));
    // Receivers announce themselves by connecting; senders wait for both (waitRecv) before sending.
    const count = 400;
    const send = Array.from({ length: 8 }, (_, id) =>
      run([fixture('typed-channel', 'sender.mjs'), JSON.stringify({ name, id, count, minSize: 0, maxSize: 9000, waitRecv: 2, channel })]),
    );
    const all = await Promise.all([...recv, ...send]);
    const bad = all.find((r) => r.code !== 0 || r.hung);
    if (bad) return bad;
    for (const r of all.slice(0, 2)) {
      const res = JSON.parse(r.out.split('\n').find((l) => l.startsWith('result ')).slice(7));
      if (res.errors.length || res.got !== 8 * count) return { code: 0, failed: `receiver got ${res.got}/${8 * count}, errors ${res.errors.slice(0, 3)}` };
    }
    return { code: 0 };
  },
  /** Batches: 4 senders (array and packed batches, sizes 0..9,000) into 2 receivers (recvMany and recvPacked). */
  async batches(round) {
    const name = unique('b');
    const channel = { capacity: 32 };
    const recv = [false, true].map((packed) =>
      run([fixture('typed-channel', 'batch-receiver.mjs'), JSON.stringify({ name, senders: 4, channel, packed, max: 7 + round % 50 })]),
    );
    const sizes = [0, 1, 64, 4127, 4129, 9000, 300];
    const send = Array.from({ length: 4 }, (_, id) =>
      run([fixture('typed-channel', 'batch-sender.mjs'), JSON.stringify({ name, id, batches: 40, batch: 1 + ((round + id) % 20), sizes, waitRecv: 2, channel, packed: id % 2 === 1 })]),
    );
    const all = await Promise.all([...recv, ...send]);
    const bad = all.find((r) => r.code !== 0 || r.hung);
    if (bad) return bad;
    const want = [0, 1, 2, 3].reduce((n, id) => n + 40 * (1 + ((round + id) % 20)), 0);
    for (const r of all.slice(0, 2)) {
      const res = JSON.parse(r.out.split('\n').find((l) => l.startsWith('result ')).slice(7));
      if (res.errors.length || res.got !== want) return { code: 0, failed: `batch receiver got ${res.got}/${want}, errors ${res.errors.slice(0, 3)}` };
    }
    return { code: 0 };
  },
  /** Random bytes flipped in live channel and registry segments while they are used. */
  async fuzz() {
    const rs = await Promise.all([
      run([fixture('typed-channel', 'corrupt.mjs'), unique('fc'), '20000']),
      run([fixture('registry', 'fuzz.mjs'), unique('fr'), '5000']),
    ]);
    const bad = rs.find((r) => r.code !== 0 || r.hung);
    if (bad) return bad;
    const uncoded = rs.flatMap((r) => json(r.out)?.uncoded ?? ['no report']);
    return { code: 0, failed: uncoded.length ? `uncoded errors: ${uncoded.slice(0, 3).join('; ')}` : undefined };
  },
};

const stats = Object.fromEntries(Object.keys(scenarios).map((k) => [k, { rounds: 0, crashes: 0, hangs: 0, failures: 0 }]));
const problems = [];
const deadline = Date.now() + seconds * 1000;
for (let round = 0; round === 0 || Date.now() < deadline; round++) {
  for (const [name, scenario] of Object.entries(scenarios)) {
    const r = await scenario(round);
    const s = stats[name];
    s.rounds++;
    if (r.hung) s.hangs++;
    else if (r.signal) s.crashes++;
    else if (r.code !== 0 || r.failed) s.failures++;
    else continue;
    problems.push(`${name} round ${round}: ${r.hung ? 'hung' : r.signal ? `died of ${r.signal}` : r.failed ?? `exit ${r.code}`}\n${(r.err ?? '').slice(-2000)}`);
  }
}
const left = readdirSync('/dev/shm').filter((f) => f.includes(`stress-`) && f.includes(`-${process.pid}-`));
console.table(stats);
const total = Object.values(stats).reduce((t, s) => ({ rounds: t.rounds + s.rounds, crashes: t.crashes + s.crashes, hangs: t.hangs + s.hangs, failures: t.failures + s.failures }), { rounds: 0, crashes: 0, hangs: 0, failures: 0 });
console.log(`native stress: ${total.rounds} rounds in ${seconds} s, ${total.crashes} crashes, ${total.hangs} hangs, ${total.failures} failed checks, ${left.length} objects left in /dev/shm`);
for (const p of problems.slice(0, 10)) console.log(p);
process.exit(total.crashes || total.hangs || total.failures || left.length ? 1 : 0);
