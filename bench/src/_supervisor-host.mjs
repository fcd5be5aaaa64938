// One libipc Manager in a process of its own, so that its RSS is measured alone.
// argv: N, 'files' | 'ignore' (logs), a folder for the logs. Prints BASE/UP lines with RSS (KiB) and times (ms).
import { readFileSync } from 'node:fs';
import { Manager } from '@libipc/supervisor';

const [n, logs, dir] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const rssKiB = () => {
  globalThis.gc?.();
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
};
const m = new Manager();
// Warm up the code paths (and the native addon) with one process, so the baseline holds them.
await m.start({ name: 'warm', command: 'sleep', args: ['1000'], logs: logs === 'files' ? { dir } : 'ignore' });
await m.stop('warm');
await m.remove('warm');
const base = rssKiB();
const specs = Array.from({ length: n }, (_, i) => ({ name: `p${i}`, command: 'sleep', args: ['1000'], logs: logs === 'files' ? { dir } : 'ignore' }));
let t0 = performance.now();
await Promise.all(specs.map((s) => m.start(s)));
const startMs = performance.now() - t0;
const up = rssKiB();
t0 = performance.now();
await m.stopAll('*');
const stopMs = performance.now() - t0;
await m.shutdown();
console.log(`RESULT ${JSON.stringify({ n, logs, base, up, startMs, stopMs, count: n })}`);
