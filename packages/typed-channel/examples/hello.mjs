// A sender that forks its receiver, on one channel (the README's second example):
//   node node_modules/@libipc/typed-channel/examples/hello.mjs    (installed from npm)
//   node packages/typed-channel/examples/hello.mjs                 (in the repository, after building)
import { fork } from 'node:child_process';
import { Channel } from '@libipc/typed-channel';

if (process.argv[2] === 'receiver') {
  const rx = new Channel('hello-example', { mode: 'receiver' });
  process.send('ready');
  for await (const msg of rx) {
    const text = Buffer.from(msg).toString();
    console.log(`receiver got: ${text}`);
    if (text === 'bye') break;
  }
  rx.close();
} else {
  const tx = new Channel('hello-example');
  const child = fork(process.argv[1], ['receiver']);
  await new Promise((resolve) => child.once('message', resolve));
  await tx.waitForRecv(1, { timeoutMs: 5000 });
  for (const text of ['hello', 'world', 'bye']) await tx.send(text, { timeoutMs: 1000 });
  await new Promise((resolve) => child.once('exit', resolve));
  tx.close(); // the last handle: libipc.chan.hello-example is gone from /dev/shm
}
