#!/usr/bin/env node
// audio-service [id]: one audio compute instance. Started by audio-host's ServiceGroup it joins the group
// (domain and id from the environment contract); run by hand it is instance <id> (default 0) of domain
// 'audio' and answers every command itself (the seed's manual mode). SIGTERM/SIGINT: unregister, exit 0.
import { GROUP_ENV, GroupMember } from '@libipc/group';
import { Channel, TypedChannel } from '@libipc/typed-channel';
import { decodeAudioBuffer, encodeAudioBuffer } from './audio-buffer.js';
import { applyGainPan } from './dsp.js';
import { channelNames, DATA_CHANNEL, DEFAULT_DOMAIN, encodeMeta, SERVICE_NAME } from './names.js';
import { buildReply, ParamType, type ReplyBody, ReplyMsgRoot } from './protocol.js';
import { handleControl, initialState, type ServiceState } from './service-handler.js';

const SEND_TIMEOUT_MS = 2000;

const standalone = process.env[GROUP_ENV.service] === undefined;
const domain = process.env[GROUP_ENV.domain] ?? DEFAULT_DOMAIN;
// Started by a group: the id is in the environment. By hand: the argument, or 0.
const id = Number(process.env[GROUP_ENV.instanceId] ?? process.argv[2] ?? 0);
if (!Number.isInteger(id) || id < 0) {
  console.error(`usage: audio-service [id]  (id: a whole number >= 0, got ${JSON.stringify(process.argv[2])})`);
  process.exit(2);
}
const names = channelNames(domain, id);
const tag = `[${SERVICE_NAME}.${id}]`;
const log = (line: string) => console.error(`  ${tag} ${line}`);

// The seed clears the names first: whatever a crashed predecessor left is not ours to join.
for (const name of Object.values(names)) Channel.clearStorage(name);
const control = new Channel(names.control, { mode: 'receiver' });
const reply = new TypedChannel(names.reply, ReplyMsgRoot);
const dataIn = new Channel(names.dataIn, { mode: 'receiver', ...DATA_CHANNEL });
const dataOut = new Channel(names.dataOut, DATA_CHANNEL);
const channels = [control, reply, dataIn, dataOut];

let member: GroupMember;
try {
  member = GroupMember.join({
    controlChannel: names.control,
    replyChannel: names.reply,
    heartbeatMs: 50,
    exitWithHost: false, // we close our channels first (below)
    domain,
    service: SERVICE_NAME,
    id,
    meta: encodeMeta(names),
  });
} catch (err) {
  for (const c of channels) c.close();
  console.error(`${tag} cannot join: ${(err as Error).message}`);
  process.exit(1);
}

let state: ServiceState = initialState();
let primary = standalone || member.isPrimary();
let replySeq = 0n;
const isPrimary = () => (primary = standalone || member.isPrimary());
member.on('role', ({ role, epoch }: { role: string; epoch: number }) => {
  if (standalone) return;
  primary = role === 'primary';
  log(`role ${role} (epoch ${epoch})`);
});

async function answer(body: ReplyBody): Promise<void> {
  const msg = { ...body, seq: ++replySeq };
  const sent = await reply.send((b) => buildReply(b, msg), { timeoutMs: SEND_TIMEOUT_MS });
  if (!sent) log(`no host is listening on ${names.reply}; reply to seq=${body.refSeq} dropped`);
}

async function controlLoop(): Promise<void> {
  for (;;) {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await control.recv();
      if (bytes === undefined) return; // closed
      const outcome = handleControl(bytes, state);
      state = outcome.state;
      if (outcome.log) log(outcome.log);
      if (!outcome.reply) continue;
      if (isPrimary()) await answer(outcome.reply);
      else log(`standby: applied seq=${outcome.reply.refSeq} (gain ${state.params[ParamType.Gain]}, pan ${state.params[ParamType.Pan]}, ${state.streaming ? 'streaming' : 'idle'}), no reply`);
    } catch (err) {
      if (control.isClosed) return;
      log(`control message not handled: ${(err as Error).message}`);
    }
  }
}

async function dataLoop(): Promise<void> {
  let idleDrops = 0;
  for (;;) {
    try {
      const bytes = await dataIn.recv();
      if (bytes === undefined) return;
      if (!state.streaming || (!primary && !isPrimary())) {
        if (idleDrops++ === 0) log(`dropping audio: ${state.streaming ? 'not the primary' : 'not streaming (send StartStream)'}`);
        continue;
      }
      idleDrops = 0;
      const buf = decodeAudioBuffer(bytes);
      const samples = applyGainPan(buf.samples, buf.channels, state.params[ParamType.Gain], state.params[ParamType.Pan]);
      if (!(await dataOut.send(encodeAudioBuffer({ ...buf, samples }), { timeoutMs: SEND_TIMEOUT_MS }))) {
        log(`no host is listening on ${names.dataOut}; buffer ${buf.sequence} dropped`);
      }
    } catch (err) {
      if (dataIn.isClosed) return;
      log(`audio buffer dropped: ${(err as Error).message}`);
    }
  }
}

let stopping = false;
function stop(why: string): void {
  if (stopping) return;
  stopping = true;
  member.leave();
  for (const c of channels) c.close();
  log(`${why}: unregistered, channels closed, exiting`);
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
member.on('host-exit', () => stop('host exited'));

member.ready();
log(`ready: pid ${process.pid}, domain ${domain}, ${names.control} / ${names.reply}${standalone ? ' (run by hand: answers every command)' : ''}`);
void controlLoop();
void dataLoop();
