import type { Etcd3, ICompare } from 'etcd3';
import type { Candidate } from './address-book.js';
import type { Keys } from './keys.js';

export interface LeadershipHooks {
  elected(): void;
  /** Leadership ended (our candidacy is gone, or a fenced write found it replaced). */
  deposed(): void;
  /** Standing for leader failed for want of etcd. */
  failed(err: unknown): void;
}

export interface LeadershipContext {
  /** The node's lease: its candidacy lives and dies with its membership. */
  leaseId(): string;
  /** The oldest candidacy in the address book's view. */
  leadingCandidate(): Candidate | undefined;
}

/** Our candidacy as written: its key, and the create revision that orders it among the others. */
interface Candidacy {
  key: Buffer;
  createRevision: string;
}

/**
 * This node's candidacy in the cluster's election: a key `b/election/leader/<lease>` under the node's own lease;
 * the oldest candidacy (lowest create revision) leads. Who leads is read from the address book, which watches
 * `b/` anyway, so the election needs no watch of its own (etcd3's Election waited on watches that could hang
 * for good). While leading it holds a fence: its key and that key's create revision. Every write a leader makes
 * is a transaction that compares that create revision, so a leader that lost its lease (stopped, cut off)
 * without noticing yet writes nothing.
 */
export class Leadership {
  private candidacy: Candidacy | undefined;
  private standing: Promise<void> | undefined;
  private fence: Candidacy | undefined;
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keys,
    private readonly nodeName: string,
    private readonly ctx: LeadershipContext,
    private readonly hooks: LeadershipHooks,
  ) {}

  get isLeader(): boolean {
    return this.fence !== undefined;
  }

  /**
   * Stands for leader, unless our candidacy is written or being written; resolves once it is in etcd (a failure
   * to write it is reported through `failed`, not here).
   */
  start(): Promise<void> {
    if (!this.candidacy && !this.standing && !this.closed) this.standing = this.stand().finally(() => (this.standing = undefined));
    return this.standing ?? Promise.resolve();
  }

  private async stand(): Promise<void> {
    const lease = this.ctx.leaseId();
    const key = Buffer.from(`${this.keys.election}election/leader/${BigInt(lease).toString(16)}`);
    let createRevision: string | undefined;
    try {
      // One candidacy per lease: written again after an outage, the key we already hold keeps its place.
      const r = await this.client.kv.txn({
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key, value: Buffer.from(this.nodeName), lease } }],
        failure: [{ request_range: { key } }],
      });
      createRevision = r.succeeded ? r.header.revision : r.responses[0]?.response_range.kvs[0]?.create_revision;
      if (createRevision === undefined) throw new Error('our election key vanished as we wrote it');
    } catch (err) {
      if (!this.closed) this.hooks.failed(err);
      return;
    }
    if (this.closed) return;
    this.candidacy = { key, createRevision };
    this.check();
  }

  /**
   * The address book's leading candidacy changed, or ours was written: take the lead if it is ours, give it up
   * if it no longer is (our key expired with our lease, or was replaced).
   */
  check(): void {
    const c = this.candidacy;
    if (!c || this.closed) return;
    const top = this.ctx.leadingCandidate();
    const ours = top !== undefined && top.key === c.key.toString() && String(top.createRevision) === c.createRevision;
    if (ours && !this.fence) {
      this.fence = c;
      this.hooks.elected();
    } else if (!ours && this.fence) {
      // An older candidacy cannot appear: ours is gone. Stand again (the put fails if our lease went with it).
      this.deposed();
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
    this.lose();
    void this.start();
  }

  /** After an outage: check that our candidacy survived (it goes with an expired lease), and stand again if not. */
  async verify(): Promise<void> {
    const c = this.candidacy;
    if (c) {
      const r = await this.client.kv.range({ key: c.key });
      if (c === this.candidacy && r.kvs[0]?.create_revision !== c.createRevision) this.lose();
    }
    await this.start();
    this.check();
  }

  /** Withdraws our candidacy (leaving the cluster). */
  async resign(): Promise<void> {
    this.closed = true;
    await this.standing;
    const c = this.candidacy;
    const was = this.fence !== undefined;
    this.candidacy = undefined;
    this.fence = undefined;
    if (c) await this.client.kv.deleteRange({ key: c.key }).catch(() => undefined);
    if (was) this.hooks.deposed();
  }

  private lose(): void {
    const was = this.fence !== undefined;
    this.candidacy = undefined;
    this.fence = undefined;
    if (was) this.hooks.deposed();
  }
}
