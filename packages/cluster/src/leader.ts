import type { Campaign, Etcd3, ICompare } from 'etcd3';
import type { Keys } from './keys.js';

export interface LeadershipHooks {
  elected(): void;
  /** Leadership ended (campaign failed, or a fenced write found our candidacy gone). */
  deposed(): void;
  /** The campaign failed for want of etcd (its lease was lost, a call failed). */
  failed(err: unknown): void;
}

/**
 * This node's candidacy in the cluster's election (etcd3's Election: the oldest live candidate key leads).
 * While leading it holds a fence: its candidate key and that key's create revision. Every write a leader
 * makes is a transaction that compares that create revision, so a leader that lost its lease (stopped,
 * cut off) without noticing yet writes nothing.
 */
export class Leadership {
  private campaign: Campaign | undefined;
  private fence: { key: Buffer; createRevision: string } | undefined;
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keys,
    private readonly nodeName: string,
    private readonly ttl: number,
    private readonly hooks: LeadershipHooks,
  ) {}

  get isLeader(): boolean {
    return this.fence !== undefined;
  }

  /** Campaigns, unless a campaign is already running. */
  start(): void {
    if (this.campaign || this.closed) return;
    const c = this.client.namespace(this.keys.election).election('leader', this.ttl).campaign(this.nodeName);
    this.campaign = c;
    c.on('elected', () => void this.onElected(c));
    c.on('error', (err: unknown) => this.end(c, err));
  }

  private async onElected(c: Campaign): Promise<void> {
    try {
      const key = Buffer.from(await c.getCampaignKey());
      const r = await this.client.kv.range({ key });
      const kv = r.kvs[0];
      if (c !== this.campaign) return;
      if (!kv) throw new Error('our election key vanished as we were elected');
      this.fence = { key, createRevision: kv.create_revision };
      this.hooks.elected();
    } catch (err) {
      this.end(c, err);
    }
  }

  /** The compare that holds only while we lead: every leader transaction carries it. */
  fenceCompare(): ICompare | undefined {
    const f = this.fence;
    return f && { key: f.key, target: 'Create', result: 'Equal', create_revision: f.createRevision };
  }

  /** A request that reads our election key, to tell a lost fence from other failed compares. */
  fenceRead(): { key: Buffer } | undefined {
    return this.fence && { key: this.fence.key };
  }

  /** Whether a read of our election key (from fenceRead) shows we still lead. */
  stillLeads(kvs: Array<{ create_revision: string }>): boolean {
    return this.fence !== undefined && kvs[0]?.create_revision === this.fence.createRevision;
  }

  /** A fenced write failed on the fence: we no longer lead. Stand again (behind the current leader). */
  deposed(): void {
    const c = this.campaign;
    if (c) this.end(c, undefined);
    this.start();
  }

  private end(c: Campaign, err: unknown): void {
    if (c !== this.campaign) return;
    this.campaign = undefined;
    const was = this.fence !== undefined;
    this.fence = undefined;
    c.removeAllListeners('elected');
    c.on('error', () => undefined);
    void c.resign().catch(() => undefined);
    if (was) this.hooks.deposed();
    if (err !== undefined && !this.closed) this.hooks.failed(err);
  }

  /** After an outage: check that our fence still holds, and campaign again if the campaign died. */
  async verify(): Promise<void> {
    const read = this.fenceRead();
    if (read) {
      const r = await this.client.kv.range(read);
      if (!this.stillLeads(r.kvs)) this.deposed();
    }
    this.start();
  }

  async resign(): Promise<void> {
    this.closed = true;
    const c = this.campaign;
    this.campaign = undefined;
    const was = this.fence !== undefined;
    this.fence = undefined;
    if (c) {
      c.removeAllListeners('elected');
      c.on('error', () => undefined);
      await c.resign().catch(() => undefined);
    }
    if (was) this.hooks.deposed();
  }
}
