import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { prefixEnd } from './keys.js';

/** One change of a key under the watched prefix. */
export interface KeyChange {
  type: 'put' | 'delete';
  key: string;
  kv: IKeyValue;
}

export interface PrefixWatchHandlers {
  /** The whole prefix as of `revision` (first list, or a re-list after compaction). */
  snapshot(kvs: IKeyValue[], revision: number): void;
  /** Changes after the last snapshot or batch, in revision order, never older than what was applied. */
  changes(changes: KeyChange[]): void;
  /** The watch broke (etcd unreachable): call resume() once etcd answers again. */
  failed(err: unknown): void;
}

/** Keys per page of a list: big prefixes are read in pages at one revision, never in one huge response. */
const PAGE = 2000;

/**
 * A consistent local view of a key prefix: one list, then a watch from the revision after it. After a break,
 * resume() watches again from the last revision applied, so nothing is missed or applied twice; if etcd
 * compacted that revision away, it lists again. Revisions already applied are skipped, whatever etcd3's
 * watcher replays on its own.
 */
export class PrefixWatch {
  /** The revision the view reflects. */
  revision = 0;
  private watcher: Watcher | undefined;
  /** Rejects the pending watchFrom() when its watcher is dropped before etcd answered. */
  private abandon: ((err: Error) => void) | undefined;
  private closed = false;
  private readonly end: Buffer;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly handlers: PrefixWatchHandlers,
    /** How long to wait for etcd to confirm a watch. */
    private readonly timeoutMs: number,
  ) {
    this.end = prefixEnd(prefix);
  }

  /** Lists the prefix and starts watching it; rejects if etcd cannot be reached. */
  async start(): Promise<void> {
    await this.relist();
  }

  /** After a failure: watch again from the last applied revision (list again if compacted). */
  async resume(): Promise<void> {
    if (this.closed) return;
    if (this.revision === 0) return this.relist();
    const outcome = await this.watchFrom(this.revision + 1);
    if (outcome === 'compacted') await this.relist();
  }

  close(): void {
    this.closed = true;
    this.drop();
  }

  /** Lists the whole prefix again (reporting it as a snapshot) and watches from there. */
  async relist(): Promise<void> {
    const kvs: IKeyValue[] = [];
    let from = Buffer.from(this.prefix);
    let revision: string | undefined;
    for (;;) {
      const res = await this.client.kv.range({ key: from, range_end: this.end, limit: PAGE, ...(revision ? { revision } : {}) });
      revision ??= res.header.revision;
      kvs.push(...res.kvs);
      if (!res.more || res.kvs.length === 0) break;
      from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    if (this.closed) return;
    this.revision = Number(revision);
    this.handlers.snapshot(kvs, this.revision);
    const outcome = await this.watchFrom(this.revision + 1);
    // Compacted between our list and our watch: extremely unlikely, but then list once more.
    if (outcome === 'compacted') await this.relist();
  }

  /** Resolves when etcd confirmed the watch ('ok'), or refused its start revision ('compacted'). */
  private watchFrom(start: number): Promise<'ok' | 'compacted'> {
    this.drop();
    const w = this.client.watch().prefix(this.prefix).startRevision(String(start)).watcher();
    this.watcher = w;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        clearTimeout(timer);
        if (this.abandon === abandon) this.abandon = undefined;
        if (!settled) {
          settled = true;
          f();
        }
      };
      const abandon = (err: Error) => settle(() => reject(err));
      this.abandon = abandon;
      const timer = setTimeout(() => {
        if (w !== this.watcher) return;
        settle(() => reject(new Error(`etcd did not confirm a watch of ${this.prefix} within ${this.timeoutMs} ms`)));
        this.drop();
      }, this.timeoutMs);
      w.on('connected', () => settle(() => resolve('ok')));
      w.on('data', (res) => {
        if (w !== this.watcher || this.closed) return;
        // Events of one revision come together; skip those at or below the revision already applied.
        const floor = this.revision;
        const changes: KeyChange[] = [];
        let top = floor;
        for (const ev of res.events) {
          const rev = Number(ev.kv.mod_revision);
          if (rev <= floor) continue;
          top = Math.max(top, rev);
          changes.push({ type: ev.type === 'Put' ? 'put' : 'delete', key: ev.kv.key.toString(), kv: ev.kv });
        }
        if (changes.length === 0) return;
        this.revision = top;
        this.handlers.changes(changes);
      });
      w.on('disconnected', (err) => {
        if (w !== this.watcher) return;
        const wasSettled = settled;
        settle(() => reject(err));
        this.drop();
        if (wasSettled && !this.closed) this.handlers.failed(err);
      });
      // etcd cancels a watch whose start revision was compacted (or for another reason): list again.
      w.on('error', () => {
        if (w !== this.watcher) return;
        const wasSettled = settled;
        settle(() => resolve('compacted'));
        // etcd ended this watch itself: cancelling it again makes etcd3 throw on the unknown watch id.
        this.drop(false);
        if (wasSettled && !this.closed) this.relist().catch((err) => this.closed || this.handlers.failed(err));
      });
    });
  }

  private drop(cancel = true): void {
    const w = this.watcher;
    this.watcher = undefined;
    this.abandon?.(new Error(`the watch of ${this.prefix} was closed`));
    if (w) {
      w.removeAllListeners('data');
      w.on('error', () => undefined);
      if (cancel) void w.cancel().catch(() => undefined);
    }
  }
}
