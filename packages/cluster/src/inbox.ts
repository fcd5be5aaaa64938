import type { Etcd3, IKeyValue } from 'etcd3';
import type { Keys } from './keys.js';
import { PrefixWatch } from './prefix-watch.js';

export interface InboxHooks {
  /** A request to start a daemon here (the key's mod revision identifies the assignment). */
  request(name: string, kv: IKeyValue): void;
  /** The outcome of a request this node made. */
  reply(id: string, kv: IKeyValue): void;
  failed(err: unknown): void;
}

/**
 * This node's inbox, `i/<node>/`: requests to start daemons here, and replies to requests it made. Only its
 * owner watches it, so a request costs one watch event, not one per node. Deletions are ours (a claimed
 * request, a read reply) and are not reported.
 */
export class Inbox {
  private readonly watch: PrefixWatch;

  constructor(client: Etcd3, keys: Keys, node: string, hooks: InboxHooks, timeoutMs: number) {
    const dispatch = (key: string, kv: IKeyValue) => {
      const what = keys.parseInbox(node, key);
      if (what?.kind === 'request') hooks.request(what.name, kv);
      else if (what?.kind === 'reply') hooks.reply(what.id, kv);
    };
    this.watch = new PrefixWatch(
      client,
      keys.inbox(node),
      {
        snapshot: (kvs) => kvs.forEach((kv) => dispatch(kv.key.toString(), kv)),
        changes: (changes) => changes.forEach((c) => c.type === 'put' && dispatch(c.key, c.kv)),
        failed: (err) => hooks.failed(err),
      },
      timeoutMs,
    );
  }

  start(): Promise<void> {
    return this.watch.start();
  }
  /** After an outage: read the whole inbox again (it is small), so a request whose handling failed is seen again. */
  resume(): Promise<void> {
    return this.watch.relist();
  }
  close(): void {
    this.watch.close();
  }
}
