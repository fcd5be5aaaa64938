import type { Etcd3, IDuplexStream, IEvent, IKeyValue, IWatchRequest, IWatchResponse } from 'etcd3';
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
  /** The stream of the current watch, once open, and the attempt it belongs to (streams of older ones are ignored). */
  private stream: WatchStream | undefined;
  private attempt: symbol | undefined;
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

  /**
   * Opens a watch stream of our own from `start`. Resolves when etcd confirmed the watch ('ok'), or refused its
   * start revision ('compacted'); rejects if the stream breaks or etcd does not confirm within timeoutMs.
   *
   * One gRPC stream per watch, not etcd3's shared Watcher: etcd3 (1.1.2) multiplexes every watch of a client on
   * one stream with a queue of creations, and a creation etcd answers "created and cancelled" (refused, e.g.
   * "invalid auth token" from a member restarted since the client signed in) stays at the head of that queue:
   * every later watch of the client then waits forever. A node whose watches all went unconfirmed after an etcd
   * member's loss never came back.
   */
  private watchFrom(start: number): Promise<'ok' | 'compacted'> {
    this.drop();
    const attempt = Symbol('watch');
    this.attempt = attempt;
    const mine = () => this.attempt === attempt && !this.closed;
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
      /** The stream is gone: reject a pending start, or report a confirmed watch as failed. */
      const broken = (err: unknown) => {
        if (!mine()) return;
        const wasSettled = settled;
        settle(() => reject(err));
        this.drop();
        if (wasSettled) this.handlers.failed(err);
      };
      const timer = setTimeout(() => broken(new Error(`etcd did not confirm a watch of ${this.prefix} within ${this.timeoutMs} ms`)), this.timeoutMs);
      /**
       * The stream broke before etcd confirmed the watch: open another one, while the deadline allows. etcd3
       * picks a host at random for each stream and a member that is down fails it at once (ECONNREFUSED), so
       * with one of three members dead, failing the whole re-join here cost a node a probe round (up to 1 s)
       * each time it drew that member: seconds after etcd itself was back. Each new stream is a new draw.
       */
      const unconfirmed = (err: unknown) => {
        if (!mine() || settled) return broken(err);
        const s = this.stream;
        this.stream = undefined;
        if (s) closeStream(s);
        setTimeout(() => mine() && !settled && open(), 50).unref();
      };
      const open = () =>
        this.client.watchClient.watch().then((stream) => {
          if (!mine() || settled) return void closeStream(stream);
          this.stream = stream;
          stream.on('data', (res: IWatchResponse) => {
            if (!mine() || stream !== this.stream) return;
            if (res.canceled) {
              // A compacted start revision: list again. Anything else (refused at creation): the watch failed.
              if (Number(res.compact_revision) > 0) return this.compacted(settled ? undefined : () => settle(() => resolve('compacted')));
              return broken(new Error(`etcd cancelled the watch of ${this.prefix}: ${res.cancel_reason || 'no reason given'}`));
            }
            if (res.created) return settle(() => resolve('ok'));
            this.apply(res.events);
          });
          stream.on('error', (err: unknown) => stream === this.stream && unconfirmed(err));
          stream.on('end', () => stream === this.stream && unconfirmed(new Error(`etcd ended the watch of ${this.prefix}`)));
          stream.write({ create_request: { key: Buffer.from(this.prefix), range_end: this.end, start_revision: String(start) } });
        }, unconfirmed);
      open();
    });
  }

  /** Events of one revision come together; those at or below the revision already applied are skipped. */
  private apply(events: IEvent[]): void {
    const floor = this.revision;
    const changes: KeyChange[] = [];
    let top = floor;
    for (const ev of events) {
      const rev = Number(ev.kv.mod_revision);
      if (rev <= floor) continue;
      top = Math.max(top, rev);
      changes.push({ type: ev.type === 'Put' ? 'put' : 'delete', key: ev.kv.key.toString(), kv: ev.kv });
    }
    if (changes.length === 0) return;
    this.revision = top;
    this.handlers.changes(changes);
  }

  /** etcd compacted past our revision: a pending start resolves 'compacted' (its caller lists); else list now. */
  private compacted(pending: (() => void) | undefined): void {
    pending?.();
    this.drop();
    if (!pending) this.relist().catch((err) => this.closed || this.handlers.failed(err));
  }

  private drop(): void {
    this.attempt = undefined;
    const s = this.stream;
    this.stream = undefined;
    this.abandon?.(new Error(`the watch of ${this.prefix} was closed`));
    if (s) closeStream(s);
  }
}

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

/**
 * Ends a watch stream on both sides. end() first: etcd3 resets its connections to a host when a stream it
 * handed out errors while still writable, and the cancel below makes it error.
 */
function closeStream(s: WatchStream): void {
  s.on('error', () => undefined);
  s.end();
  s.cancel();
}
