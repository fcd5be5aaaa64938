import type { Etcd3, IKeyValue } from 'etcd3';
import type { Keys } from './keys.js';
import { type KeyChange, PrefixWatch } from './prefix-watch.js';

/** A key's identity in etcd: its create revision orders registrations (older first) and candidates. */
interface Record {
  createRevision: number;
  lease: string;
}

/** One node's candidacy for leader: `b/election/leader/<lease>`, the node's name as value. */
export interface Candidate extends Record {
  key: string;
  node: string;
}

export interface AddressBookHooks {
  nodeJoined(node: string): void;
  /** A node's record changed lease (it re-joined after an outage). */
  nodeUpdated(node: string): void;
  nodeLeft(node: string): void;
  registered(name: string, node: string): void;
  unregistered(name: string, node: string): void;
  /** `name` is now registered on several nodes, oldest first. */
  duplicate(name: string, nodes: string[]): void;
  /** The leading candidacy changed (another node, or the same node with a new candidacy key). */
  leaderChanged(leader: string | undefined): void;
  failed(err: unknown): void;
}

/**
 * The local cache of the cluster's members, registrations and election candidates: one list of `b/`, then a
 * watch from the next revision (resumed after outages, re-listed after compaction). Every query is answered
 * from memory. A name registered on several nodes resolves to the oldest registration (lowest create
 * revision; ties by node name, which the revision order makes impossible but keeps total).
 */
export class AddressBook {
  private readonly nodes = new Map<string, Record>();
  /** name → node → registration. */
  private readonly regs = new Map<string, Map<string, Record>>();
  /** name → the node locate() answers, kept up to date so that locate is one Map lookup. */
  private readonly owners = new Map<string, string>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly candidates = new Map<string, Candidate>();
  private currentLeader: Candidate | undefined;
  private readonly watch: PrefixWatch;
  private ready = false;
  /** Callers waiting for the book to reach a revision (read-your-writes after register/unregister). */
  private waiters: Array<{ revision: number; done(): void }> = [];

  constructor(
    client: Etcd3,
    private readonly keys: Keys,
    private readonly hooks: AddressBookHooks,
    timeoutMs: number,
  ) {
    this.watch = new PrefixWatch(
      client,
      keys.book,
      {
        snapshot: (kvs) => this.snapshot(kvs),
        changes: (changes) => this.apply(changes),
        failed: (err) => hooks.failed(err),
      },
      timeoutMs,
    );
  }

  start(): Promise<void> {
    return this.watch.start();
  }
  resume(): Promise<void> {
    return this.watch.resume();
  }
  close(): void {
    this.watch.close();
    for (const w of this.waiters.splice(0)) w.done();
  }

  /**
   * Resolves once the book reflects `revision` (a write of ours), so that this node reads its own writes;
   * after `timeoutMs` at the latest (the watch may be broken: the write stands either way).
   */
  caughtUp(revision: number, timeoutMs: number): Promise<void> {
    if (this.watch.revision >= revision) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        revision,
        done: () => {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve();
        },
      };
      const timer = setTimeout(w.done, timeoutMs);
      this.waiters.push(w);
    });
  }

  private release(): void {
    const now = this.watch.revision;
    for (const w of this.waiters.filter((x) => x.revision <= now)) w.done();
  }
  get revision(): number {
    return this.watch.revision;
  }

  locate(name: string): string | undefined {
    return this.owners.get(name);
  }
  /** Every node holding `name`, oldest registration first. */
  holders(name: string): string[] {
    const regs = this.regs.get(name);
    if (!regs) return [];
    return [...regs].sort(([na, a], [nb, b]) => a.createRevision - b.createRevision || (na < nb ? -1 : 1)).map(([n]) => n);
  }
  processList(node: string): string[] {
    return [...(this.byNode.get(node) ?? [])].sort();
  }
  nodeNames(): string[] {
    return [...this.nodes.keys()].sort();
  }
  hasNode(node: string): boolean {
    return this.nodes.has(node);
  }
  nodeLease(node: string): string | undefined {
    return this.nodes.get(node)?.lease;
  }
  /** The node holding the oldest election candidacy (the election's rule), or undefined. */
  leader(): string | undefined {
    return this.currentLeader?.node;
  }
  /** The oldest election candidacy: its key, node and create revision. */
  leadingCandidate(): Candidate | undefined {
    return this.currentLeader;
  }

  private snapshot(kvs: IKeyValue[]): void {
    const before = { nodes: new Map(this.nodes), regs: this.allRegs(), leader: this.currentLeader };
    this.nodes.clear();
    this.regs.clear();
    this.owners.clear();
    this.byNode.clear();
    this.candidates.clear();
    for (const kv of kvs) this.put(kv.key.toString(), kv, false);
    this.refreshLeader(false);
    if (!this.ready) {
      this.ready = true;
      this.release();
      return;
    }
    // A re-list after compaction: report what changed while we were not watching.
    for (const node of before.nodes.keys()) if (!this.nodes.has(node)) this.hooks.nodeLeft(node);
    for (const [node, rec] of this.nodes) {
      const old = before.nodes.get(node);
      if (!old) this.hooks.nodeJoined(node);
      else if (old.lease !== rec.lease) this.hooks.nodeUpdated(node);
    }
    const after = this.allRegs();
    for (const r of before.regs) if (!after.has(r)) this.hooks.unregistered(...split(r));
    for (const r of after) if (!before.regs.has(r)) this.hooks.registered(...split(r));
    if (!sameCandidate(before.leader, this.currentLeader)) this.hooks.leaderChanged(this.currentLeader?.node);
    this.release();
  }

  private apply(changes: KeyChange[]): void {
    // One revision can remove a node and all its registrations (its lease expired): apply all, then report
    // node-left last, so that listeners see a book without the node's names.
    const left: string[] = [];
    for (const c of changes) {
      if (c.type === 'put') this.put(c.key, c.kv, true);
      else {
        const gone = this.remove(c.key);
        if (gone) left.push(gone);
      }
    }
    this.refreshLeader(true);
    for (const node of left) this.hooks.nodeLeft(node);
    this.release();
  }

  private put(key: string, kv: IKeyValue, report: boolean): void {
    const what = this.keys.parseBook(key);
    if (!what) return;
    const rec: Record = { createRevision: Number(kv.create_revision), lease: String(kv.lease) };
    if (what.kind === 'node') {
      const old = this.nodes.get(what.node);
      this.nodes.set(what.node, rec);
      if (report && !old) this.hooks.nodeJoined(what.node);
      else if (report && old && old.lease !== rec.lease) this.hooks.nodeUpdated(what.node);
    } else if (what.kind === 'proc') {
      let regs = this.regs.get(what.name);
      if (!regs) this.regs.set(what.name, (regs = new Map()));
      const isNew = !regs.has(what.node);
      regs.set(what.node, rec);
      let names = this.byNode.get(what.node);
      if (!names) this.byNode.set(what.node, (names = new Set()));
      names.add(what.name);
      this.refreshOwner(what.name);
      if (report && isNew) {
        this.hooks.registered(what.name, what.node);
        if (regs.size > 1) this.hooks.duplicate(what.name, this.holders(what.name));
      }
    } else {
      this.candidates.set(key, { ...rec, key, node: kv.value.toString() });
    }
  }

  /** Removes a key; returns the node's name when it was a node record. */
  private remove(key: string): string | undefined {
    const what = this.keys.parseBook(key);
    if (!what) return undefined;
    if (what.kind === 'node') return this.nodes.delete(what.node) ? what.node : undefined;
    if (what.kind === 'election') {
      this.candidates.delete(key);
      return undefined;
    }
    const regs = this.regs.get(what.name);
    if (!regs?.delete(what.node)) return undefined;
    if (regs.size === 0) this.regs.delete(what.name);
    const names = this.byNode.get(what.node);
    names?.delete(what.name);
    if (names?.size === 0) this.byNode.delete(what.node);
    this.refreshOwner(what.name);
    this.hooks.unregistered(what.name, what.node);
    return undefined;
  }

  private refreshOwner(name: string): void {
    const oldest = this.holders(name)[0];
    if (oldest === undefined) this.owners.delete(name);
    else this.owners.set(name, oldest);
  }

  private refreshLeader(report: boolean): void {
    let best: Candidate | undefined;
    for (const c of this.candidates.values()) if (!best || c.createRevision < best.createRevision) best = c;
    const same = sameCandidate(best, this.currentLeader);
    this.currentLeader = best;
    if (same) return;
    if (report) this.hooks.leaderChanged(best?.node);
  }

  private allRegs(): Set<string> {
    const all = new Set<string>();
    for (const [name, regs] of this.regs) for (const node of regs.keys()) all.add(`${name}/${node}`);
    return all;
  }
}

function sameCandidate(a: Candidate | undefined, b: Candidate | undefined): boolean {
  return a?.key === b?.key && a?.createRevision === b?.createRevision;
}

function split(reg: string): [string, string] {
  const i = reg.indexOf('/');
  return [reg.slice(0, i), reg.slice(i + 1)];
}
