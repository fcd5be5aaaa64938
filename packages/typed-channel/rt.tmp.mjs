import { Channel } from '@libipc/typed-channel';
const name = 'rt-' + process.pid;
const tx = new Channel(name, { capacity: 64, slotSize: 128 });
const rx = new Channel(name, { mode: 'receiver' });
const msg = Buffer.alloc(64, 1);
for (let r = 0; r < 3; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 1_000_000; i++) { tx.trySend(msg); rx.tryRecv(); }
  console.log('trySend+tryRecv ns', Number(process.hrtime.bigint() - t0) / 1e6);
}
tx.close(); rx.close();
