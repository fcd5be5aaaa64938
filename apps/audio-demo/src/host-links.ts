// The host's channels: a control sender to every instance (all of them hear every command, so the
// standbys keep the primary's state), and the reply + data channels of the current primary.
import type { ServiceEntry } from '@libipc/registry';
import { BadMessageError } from '@libipc/shm';
import { Channel, TypedChannel } from '@libipc/typed-channel';
import { decodeMeta } from './names.js';
import { buildControl, type Control, ControlMsg, readReply, type Reply, type ReplyMsg, ReplyMsgRoot } from './protocol.js';
import type { AudioPath } from './stream.js';

export type ControlBody = Control extends infer C ? (C extends Control ? Omit<C, 'seq'> : never) : never;

const SEND_TIMEOUT_MS = 2000;

async function connected(channel: { waitForRecv(n: number, o: { timeoutMs: number }): Promise<boolean>; name: string; close(): void }, timeoutMs: number) {
  if (!(await channel.waitForRecv(1, { timeoutMs }))) {
    channel.close();
    throw new Error(`nobody receives on ${channel.name} after ${timeoutMs} ms`);
  }
}

export class ControlSenders {
  private readonly senders = new Map<string, TypedChannel<ControlMsg>>();
  private seq = 0n;

  /** Opens (or re-opens, after a respawn) the control channel of one instance and waits for its receiver. */
  async connect(instance: string, controlChannel: string, timeoutMs: number): Promise<void> {
    this.drop(instance);
    const channel = new TypedChannel(controlChannel, ControlMsg);
    await connected(channel, timeoutMs);
    this.senders.set(instance, channel);
  }

  drop(instance: string): void {
    this.senders.get(instance)?.close();
    this.senders.delete(instance);
  }

  /** Sends a command with the next seq to every connected instance (or only `to`); returns the seq. */
  async send(body: ControlBody, to?: string): Promise<bigint> {
    const msg = { ...body, seq: ++this.seq } as Control;
    for (const [instance, channel] of this.senders) {
      if (to !== undefined && instance !== to) continue;
      await channel.send((b) => buildControl(b, msg), { timeoutMs: SEND_TIMEOUT_MS });
    }
    return msg.seq;
  }

  closeAll(): void {
    for (const instance of [...this.senders.keys()]) this.drop(instance);
  }
}

/** Replies and audio of the primary. */
export class PrimaryLink implements AudioPath {
  readonly instance: string;
  readonly names: { reply: string; dataIn: string; dataOut: string };
  private readonly reply: TypedChannel<ReplyMsg>;
  private readonly dataIn: Channel;
  private readonly dataOut: Channel;

  private constructor(entry: ServiceEntry, data: { dataIn: string; dataOut: string }) {
    this.instance = entry.name;
    this.names = { reply: entry.replyChannel, ...data };
    // Receivers first, so nothing the service sends from now on is missed.
    this.reply = new TypedChannel(entry.replyChannel, ReplyMsgRoot, { mode: 'receiver', verify: (m) => void readReply(m) });
    this.dataOut = new Channel(data.dataOut, { mode: 'receiver' });
    this.dataIn = new Channel(data.dataIn);
  }

  /** Connects to the channels the instance registered, waiting (no fixed sleep) until it receives audio. */
  static async open(entry: ServiceEntry, timeoutMs: number): Promise<PrimaryLink> {
    const data = decodeMeta(entry.meta);
    if (!data) throw new Error(`${entry.name} registered no data channels (meta ${JSON.stringify(entry.meta)})`);
    const link = new PrimaryLink(entry, data);
    try {
      await connected(link.dataIn, timeoutMs);
    } catch (err) {
      link.close();
      throw err;
    }
    return link;
  }

  /** The reply to `refSeq`; older replies are passed to `onOther` and skipped. */
  async awaitReply(refSeq: bigint, timeoutMs: number, onOther: (why: string) => void): Promise<Reply> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      let msg: ReplyMsg | undefined;
      try {
        msg = left > 0 ? await this.reply.recv({ timeoutMs: left }) : undefined;
      } catch (err) {
        if (!(err instanceof BadMessageError)) throw err;
        onOther(err.message);
        continue;
      }
      if (msg === undefined) throw new Error(`no reply to seq=${refSeq} from ${this.instance} within ${timeoutMs} ms`);
      const reply = readReply(msg);
      if (reply.refSeq === refSeq) return reply;
      onOther(`skipped a reply to seq=${reply.refSeq} while waiting for seq=${refSeq}`);
    }
  }

  send(bytes: Uint8Array): Promise<boolean> {
    return this.dataIn.send(bytes, { timeoutMs: SEND_TIMEOUT_MS });
  }

  recv(timeoutMs: number): Promise<Uint8Array | undefined> {
    return this.dataOut.recv({ timeoutMs });
  }

  tryRecv(): Uint8Array | undefined {
    return this.dataOut.tryRecv();
  }

  close(): void {
    this.reply.close();
    this.dataIn.close();
    this.dataOut.close();
  }
}
