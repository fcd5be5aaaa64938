// A group instance for group.mjs: answers every ping on its control channel, when it is the primary.
import { GroupMember } from '@libipc/group';
import { Channel } from '@libipc/typed-channel';

const id = process.argv[process.argv.length - 1];
// A primary that holds memory takes long to tear down: BENCH_BALLAST_MB touched megabytes.
const ballast = [];
for (let i = 0; i < Number(process.env.BENCH_BALLAST_MB ?? 0); i++) ballast.push(Buffer.alloc(1 << 20, 1));
const control = `bench_ctrl_${process.env.BENCH_TAG}_${id}`;
const reply = `bench_reply_${process.env.BENCH_TAG}_${id}`;
const rx = new Channel(control, { mode: 'receiver' });
const tx = new Channel(reply);
const member = GroupMember.join({ controlChannel: control, replyChannel: reply, heartbeatMs: 50 });
process.on('SIGTERM', () => {
  member.leave();
  rx.close();
  tx.close();
  process.exit(0);
});
for await (const msg of rx) {
  if (member.isPrimary()) await tx.send(msg);
}
