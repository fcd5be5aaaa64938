// Two processes bounce a counter through one shared-memory word with wait/wake, guard a shared
// total with a RobustMutex, and the parent watches the child's exit with watchExit.
//   node packages/shm/examples/ping-pong.mjs
import { fork } from 'node:child_process';
import { RobustMutex, SharedMemory, processIdentity, wait, wake, watchExit } from '@libipc/shm';

const ROUNDS = 10_000;
const [role, name] = process.argv.slice(2);

if (role !== 'child') {
  const segment = `ping-pong-${process.pid}`;
  const mem = SharedMemory.create(segment, 4096); // mode 0600, /dev/shm/libipc.shm.<name>
  const words = new Int32Array(mem.buffer);
  const mutex = RobustMutex.init(mem, 64);
  const child = fork(new URL(import.meta.url).pathname, ['child', segment]);
  const childId = await new Promise((r) => child.once('message', () => r(processIdentity(child.pid))));

  console.log(`ping-pong: ${ROUNDS} round trips between pid ${process.pid} and pid ${child.pid} over ${mem.objectName}`);
  const t0 = performance.now();
  for (let i = 1; i <= ROUNDS; i++) {
    Atomics.store(words, 0, 2 * i - 1); // ping
    wake(mem, 0);
    while (Atomics.load(words, 0) !== 2 * i) await wait(mem, 0, 2 * i - 1, 5_000, { spinUs: 50 });
  }
  const us = ((performance.now() - t0) * 1000) / ROUNDS;
  console.log(`ping-pong: mean round trip ${us.toFixed(2)} µs`);

  const { ownerDied } = await mutex.lock(5_000);
  console.log(`mutex: total written by the child under the lock = ${words[4]} (ownerDied=${ownerDied})`);
  mutex.unlock();

  Atomics.store(words, 0, -1); // tell the child to finish
  wake(mem, 0);
  const t1 = performance.now();
  await watchExit(childId.pid, childId.startTime);
  console.log(`watchExit: child ${child.pid} exit seen after ${(performance.now() - t1).toFixed(1)} ms`);
  mem.close();
  SharedMemory.unlink(segment);
} else {
  const mem = SharedMemory.open(name);
  const words = new Int32Array(mem.buffer);
  const mutex = new RobustMutex(mem, 64);
  mutex.lockSync(1000);
  words[4] = ROUNDS;
  mutex.unlock();
  process.send('ready');
  let seen = 0;
  for (;;) {
    await wait(mem, 0, seen, 5_000, { spinUs: 50 });
    const v = Atomics.load(words, 0);
    if (v === -1) break;
    if (v % 2 === 1) {
      Atomics.store(words, 0, v + 1); // pong
      wake(mem, 0);
      seen = v + 1;
    }
  }
  mem.close();
  process.disconnect();
}
