import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import { ClosedError, ClusterUnavailableError, ExistsError, LibipcError, NotFoundError, SpawnError, validateName } from '@libipc/shm';
import { AddressBook as Book } from './address-book.js';
import { Availability, trace } from './availability.js';
import { type Identity, createClient, joinFailure, refusal, unavailable } from './connection.js';
import { Daemons } from './daemons.js';
import { Fencing, splitFenced } from './fencing.js';
import { type Hasher, loadHasher } from './hash.js';
import { Inbox } from './inbox.js';
import { Keys } from './keys.js';
import { Leadership } from './leader.js';
import { Membership } from './membership.js';
import { type ClusterNodeOptions, type ParsedClusterOptions, parseClusterOptions, validateArgs } from './options.js';
import { Placement } from './placement.js';
import { Recovery } from './recovery.js';
import { RegistryBridge } from './registry-bridge.js';
import type { AddressBook, DaemonSpec, Launcher } from './types.js';

/**
 * One node of a cluster on etcd. Join with `ClusterNode.join(…)`; the node then holds a lease (its
 * membership), keeps a local address book of every node's registrations, stands for leader, and runs the
 * daemons assigned to it. Events: 'node-joined' (node), 'node-left' (node), 'leader', 'follower' (leader),
 * 'daemon-placed' / 'daemon-recovered' ({ launcher, processName, args, node }), 'daemon-failed'
 * ({ …, node, error }), 'duplicate' ({ processName, nodes }), 'unavailable' (error), 'available',
 * 'fenced' ({ stopped, kept }: it could not renew its lease in time and stopped its daemons),
 * 'request-refused' ({ processName, launcher?, from?, error }: an inbox request it will not run).
 */
export class ClusterNode extends EventEmitter {
  readonly nodeName: string;
  readonly cluster: string;
  private readonly opts: ParsedClusterOptions;
  private readonly client: Etcd3;
  private readonly keys: Keys;
  private readonly hasher: Hasher;
  private readonly membership: Membership;
  private readonly book: Book;
  private readonly inbox: Inbox;
  private readonly leadership: Leadership;
  private readonly daemons: Daemons;
  private readonly recovery: Recovery;
  private readonly availability: Availability;
  private readonly fencing: Fencing;
  /** The stops of the last fence, awaited before the node counts as re-joined. */
  private fenceStops: Promise<void> = Promise.resolve();
  private readonly identity: Identity;
  private readonly bridge: RegistryBridge | undefined;
  private placement: Placement | undefined;
  private started = false;
  private closed = false;
  private leaving: Promise<void> | undefined;
  /** The last role announced ('leader', or 'follower:<leader>'), so that each change is announced once. */
  private announced: string | undefined;
  private roleKnown: (() => void) | undefined;
  /** Role events start once join() has resolved (listeners are attached after it). */
  private announcing = false;

  private constructor(opts: ParsedClusterOptions, client: Etcd3, hasher: Hasher) {
    super();
    this.opts = opts;
    this.nodeName = opts.nodeName;
    this.cluster = opts.cluster;
    this.client = client;
    this.hasher = hasher;
    this.keys = new Keys(opts.cluster);
    this.identity = { prefix: this.keys.root, cluster: opts.cluster, auth: opts.auth };
    this.fencing = new Fencing(opts.leaseTtlS * 1000, opts.fenceMarginMs, { fence: () => this.fence() });
    const etcdFailed = (err: unknown) => this.availability.lost(err);
    this.availability = new Availability({
      probe: async () => void (await client.kv.range({ key: Buffer.from(this.keys.node(this.nodeName)) })),
      reconcile: () => this.reconcile(),
      down: (err) => this.emitOpen('unavailable', unavailable(`node '${this.nodeName}'`, err)),
      restored: () => {
        this.emitOpen('available');
        this.recovery.trigger();
      },
    });
    this.membership = new Membership(client, this.keys, opts.nodeName, opts.leaseTtlS, {
      leaseLost: etcdFailed,
      keepaliveFailed: (err) => this.availability.suspect(err),
      renewed: (sentAt) => this.fencing.renewed(sentAt),
    });
    this.book = new Book(
      client,
      this.keys,
      {
        nodeJoined: (node) => {
          this.placement = undefined;
          if (node !== this.nodeName) this.emitOpen('node-joined', node);
          this.recovery.trigger();
        },
        nodeUpdated: () => this.recovery.trigger(),
        nodeLeft: (node) => {
          this.placement = undefined;
          this.daemons.nodeLeft(node);
          if (node !== this.nodeName) this.emitOpen('node-left', node);
          this.recovery.trigger();
        },
        registered: () => undefined,
        unregistered: () => undefined,
        duplicate: (processName, nodes) => this.emitOpen('duplicate', { processName, nodes }),
        leaderChanged: (leader) => {
          this.leadership.check();
          if (leader !== undefined && leader !== this.nodeName) this.roleKnown?.();
          this.announceRole();
        },
        failed: etcdFailed,
      },
      opts.requestTimeoutMs,
    );
    this.daemons = new Daemons({
      client,
      keys: this.keys,
      node: this.nodeName,
      membership: this.membership,
      book: this.book,
      pickNode: (name) => this.pick(name),
      emit: (event, payload) => this.emitOpen(event, payload),
      etcdFailed,
      spawnTimeoutMs: opts.spawnTimeoutMs,
      fenced: () => this.fencing.fenced,
    });
    this.inbox = new Inbox(
      client,
      this.keys,
      this.nodeName,
      {
        request: (name, kv) => this.daemons.onRequest(name, kv),
        reply: (id, kv) => this.daemons.onReply(id, kv),
        failed: etcdFailed,
      },
      opts.requestTimeoutMs,
    );
    const leaderCtx = { leaseId: () => this.membership.leaseId, leadingCandidate: () => this.book.leadingCandidate() };
    this.leadership = new Leadership(client, this.keys, this.nodeName, leaderCtx, {
      elected: () => {
        this.roleKnown?.();
        this.announceRole();
        this.recovery.trigger();
      },
      deposed: () => {
        this.recovery.reset();
        this.announceRole();
      },
      failed: etcdFailed,
    });
    this.recovery = new Recovery(
      {
        node: this.nodeName,
        daemons: this.daemons,
        book: this.book,
        leadership: this.leadership,
        pickNode: (name) => this.pick(name),
        available: () => this.availability.available,
        emit: (event: string, payload: unknown) => this.emitOpen(event, payload),
        etcdFailed,
        spawnTimeoutMs: opts.spawnTimeoutMs,
      },
      opts.recoveryIntervalMs,
    );
    this.bridge = opts.registry
      ? new RegistryBridge(opts.registry, {
          register: (name) => this.register(name),
          unregister: (name) => this.unregister(name),
        })
      : undefined;
  }

  /**
   * Joins the cluster: a lease, the node key (ERR_LIBIPC_EXISTS if a live node has this name), the address
   * book, a candidacy for leader. Resolves once the node knows whether it leads. ERR_LIBIPC_CLUSTER_UNAVAILABLE
   * if etcd cannot be reached; ERR_LIBIPC_INVALID_ARGUMENT / ERR_LIBIPC_INVALID_NAME for bad options.
   */
  static async join(opts: ClusterNodeOptions): Promise<ClusterNode> {
    const parsed = parseClusterOptions(opts);
    const hasher = await loadHasher();
    const node = new ClusterNode(parsed, createClient(parsed), hasher);
    try {
      await node.start();
    } catch (err) {
      await node.abandon();
      throw await joinFailure(`ClusterNode.join('${parsed.nodeName}')`, err, node.identity, parsed);
    }
    return node;
  }

  private async start(): Promise<void> {
    await this.membership.join();
    // The book first: handling a request needs it (to answer the node that asked).
    await this.book.start();
    await this.inbox.start();
    this.started = true;
    const known = new Promise<void>((resolve) => (this.roleKnown = resolve));
    await this.leadership.start();
    const other = this.book.leader();
    if (other !== undefined && other !== this.nodeName) this.roleKnown?.();
    // Wait to know who leads (bounded: a crashed leader's candidacy lasts up to its lease TTL).
    await Promise.race([known, sleep(this.opts.requestTimeoutMs, undefined, { ref: false })]);
    this.roleKnown = undefined;
    this.bridge?.start();
    this.recovery.start();
    // Announce the first role after join() resolved, so that listeners attached right after see it.
    setImmediate(() => {
      this.announcing = true;
      this.announceRole();
    });
  }

  /** A failed join: give back what was taken. */
  private async abandon(): Promise<void> {
    this.closed = true;
    this.fencing.close();
    this.availability.close();
    await this.recovery.stop();
    await this.leadership.resign();
    await this.membership.leave();
    this.inbox.close();
    this.book.close();
    this.client.close();
  }

  /** Whether this node leads the cluster now (it alone recovers daemons). */
  get isLeader(): boolean {
    return !this.closed && this.leadership.isLeader;
  }

  /** The leading node as this node's address book knows it. */
  get leader(): string | undefined {
    return this.book.leader();
  }

  /** False while etcd cannot be reached (operations fail with ERR_LIBIPC_CLUSTER_UNAVAILABLE). */
  get available(): boolean {
    return !this.closed && this.availability.available;
  }

  /** Registers a launcher by name: it starts the daemons assigned to this node, and lists those that should exist. */
  registerLauncher(name: string, launcher: Launcher): void {
    this.assertOpen();
    this.daemons.registerLauncher(name, launcher);
  }

  /**
   * Starts `processName` with `launcher` on pickNode(processName): here, or by a request that node watches.
   * Resolves with the node once the daemon was started there. ERR_LIBIPC_EXISTS if it already runs (or is
   * being started) somewhere; ERR_LIBIPC_NOT_FOUND for a launcher this node does not know; ERR_LIBIPC_SPAWN
   * if the launcher failed; ERR_LIBIPC_TIMEOUT if the node did not confirm within spawnTimeoutMs.
   */
  async spawnRegister(launcher: string, processName: string, args?: unknown[]): Promise<{ node: string }> {
    this.assertOpen();
    validateName(launcher, 'launcher name');
    validateName(processName, 'process name');
    const spec: DaemonSpec = { launcher, processName };
    const plain = validateArgs(args, `spawnRegister('${processName}')`);
    if (plain !== undefined) spec.args = plain;
    if (!this.daemons.launchers.has(launcher)) {
      throw new NotFoundError(`no launcher '${launcher}' on node '${this.nodeName}'; call registerLauncher('${launcher}', …) first (on every node)`);
    }
    await this.daemons.checkArgs(spec);
    for (let attempt = 0; attempt < 3; attempt++) {
      this.assertUsable('spawnRegister');
      const where = this.book.locate(processName);
      if (where !== undefined) throw new ExistsError(`'${processName}' already runs on node '${where}'`);
      const target = this.pick(processName) ?? this.nodeName;
      if (target === this.nodeName) {
        const r = await this.etcd('spawnRegister', () => this.daemons.startHere(spec));
        if (r.kind === 'ok') return this.placed(spec, target, r.revision);
        throw new ExistsError(r.kind === 'exists' ? `'${processName}' already runs on node '${r.node}'` : `'${processName}' is being started on another node`);
      }
      const w = Daemons.waitOutcome(this.opts.spawnTimeoutMs, target, processName);
      const r = await this.etcd('spawnRegister', () => this.daemons.request(spec, target, undefined, w.settle));
      if (r.kind !== 'ok') w.settle({ kind: 'target-left' });
      if (r.kind === 'exists') throw new ExistsError(`'${processName}' already runs on node '${r.node}'`);
      if (r.kind === 'pending') throw new ExistsError(`'${processName}' is being started on node '${r.node}'`);
      if (r.kind === 'target-gone') {
        // Our book is behind the membership: let it catch up, then pick again.
        await sleep(200);
        continue;
      }
      const o = await w.outcome;
      if (o.kind === 'started') return this.placed(spec, target, o.revision);
      if (o.kind === 'failed') throw o.error;
    }
    throw new SpawnError(`could not place '${processName}': the nodes it was assigned to kept leaving; try again`);
  }

  /** A daemon started by spawnRegister: resolves once this node's book shows it (read-your-writes). */
  private async placed(spec: DaemonSpec, node: string, revision: number): Promise<{ node: string }> {
    await this.book.caughtUp(revision, this.opts.requestTimeoutMs);
    this.emitOpen('daemon-placed', { ...spec, node });
    return { node };
  }

  /**
   * Registers `processName` as running on this node (under its lease: it goes if the node dies). Resolves once
   * this node's own address book shows it; other nodes' books follow within milliseconds.
   */
  async register(processName: string): Promise<void> {
    this.assertOpen();
    validateName(processName, 'process name');
    this.assertUsable('register');
    const local = this.membership.processes.get(processName) ?? {};
    const revision = await this.etcd('register', () => this.membership.register(processName, Buffer.from('{}'), local));
    await this.book.caughtUp(revision, this.opts.requestTimeoutMs);
  }

  /** Withdraws this node's registration of `processName` (nothing happens if it has none). */
  async unregister(processName: string): Promise<void> {
    this.assertOpen();
    validateName(processName, 'process name');
    this.assertUsable('unregister');
    const revision = await this.etcd('unregister', () => this.membership.unregister(processName));
    await this.book.caughtUp(revision, this.opts.requestTimeoutMs);
  }

  /** The node running `processName`, from the local cache (never a network round trip); undefined if none. */
  locate(processName: string): string | undefined {
    validateName(processName, 'process name');
    return this.book.locate(processName);
  }

  /** The local address book: every answer comes from memory. */
  addressBook(): AddressBook {
    return {
      locate: (name) => this.locate(name),
      getProcessList: (node) => {
        validateName(node, 'node name');
        return this.book.processList(node);
      },
      pickNode: (name) => {
        validateName(name, 'process name');
        return this.pick(name);
      },
      getAvailableNodes: () => this.book.nodeNames(),
    };
  }

  private pick(name: string): string | undefined {
    this.placement ??= new Placement(this.book.nodeNames(), this.hasher);
    return this.placement.owner(name);
  }

  /**
   * Leaves the cluster: stops the daemons its launchers started here (so that the leader re-places them
   * without duplicates), resigns, revokes its lease (its registrations go at once) and closes the client.
   * Idempotent.
   */
  leave(): Promise<void> {
    this.leaving ??= (async () => {
      const reachable = this.availability.available;
      this.closed = true;
      this.fencing.close();
      this.bridge?.close();
      this.availability.close();
      await this.recovery.stop();
      await this.daemons.stopAll(this.opts.spawnTimeoutMs);
      if (reachable) {
        await this.leadership.resign();
        await this.membership.leave();
      }
      this.inbox.close();
      this.book.close();
      this.client.close();
    })();
    return this.leaving;
  }

  /**
   * After an outage: re-join (new lease if needed), stop daemons re-placed elsewhere, resume the book, withdraw
   * registrations of ours we do not know of (a write whose answer was lost), read the inbox again, stand again.
   */
  private async reconcile(): Promise<void> {
    if (!this.started || this.closed) return;
    const step = <T>(what: string, p: Promise<T>) => traced(this.nodeName, what, p);
    const { displaced } = await step('rejoin', this.membership.rejoin());
    if (displaced.length > 0) await step('stop displaced', this.daemons.stop(displaced, this.opts.spawnTimeoutMs));
    await step('resume book', this.book.resume());
    await step('sweep', this.membership.sweep(this.book.processList(this.nodeName), (name) => this.daemons.isClaiming(name)));
    await step('resume inbox', this.inbox.resume());
    await step('verify leadership', this.leadership.verify());
    this.bridge?.resync();
    // Fenced daemons are stopped and their registrations withdrawn (above): the node may start daemons again.
    await step('fenced stops', this.fenceStops);
    this.fencing.reset();
  }

  /**
   * The lease may expire on etcd's side within the margin and the leader then starts our daemons elsewhere:
   * stop them now (except those whose launcher keeps them running when fenced), forget them (so a re-join does
   * not register them again, and withdraws their registrations if the lease survived), and go unavailable.
   */
  private fence(): void {
    if (this.closed) return;
    const running = [...this.membership.processes.values()].flatMap((p) => (p.daemon ? [p.daemon] : []));
    const { stop, keep } = splitFenced(running, this.daemons.launchers);
    for (const d of stop) this.membership.processes.delete(d.processName);
    const ttl = this.opts.leaseTtlS * 1000;
    this.availability.lost(
      new ClusterUnavailableError(
        `node '${this.nodeName}' could not renew its lease for ${ttl - this.opts.fenceMarginMs} ms (lease TTL ${ttl} ms − fenceMarginMs ${this.opts.fenceMarginMs}): it fenced itself and stopped its daemons`,
      ),
    );
    this.fenceStops = this.daemons.stop(stop, this.opts.spawnTimeoutMs).then(() => this.emitOpen('fenced', { stopped: stop, kept: keep }));
  }

  private announceRole(): void {
    if (!this.announcing || this.closed) return;
    if (this.leadership.isLeader) {
      if (this.announced !== 'leader') {
        this.announced = 'leader';
        this.emit('leader');
      }
      return;
    }
    const leader = this.book.leader();
    if (leader === this.nodeName) return; // our candidacy leads but the election has not told us yet
    const role = `follower:${leader ?? ''}`;
    if (this.announced === role) return;
    if (leader === undefined && this.announced !== 'leader') return; // nothing new to say
    this.announced = role;
    this.emit('follower', leader);
  }

  private emitOpen(event: string, ...args: unknown[]): void {
    if (!this.closed) this.emit(event, ...args);
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError(`node '${this.nodeName}' has left the cluster; join again for a new node`);
  }

  private assertUsable(what: string): void {
    this.assertOpen();
    if (!this.availability.available) {
      throw new ClusterUnavailableError(`${what}: node '${this.nodeName}' cannot reach etcd right now; the address book keeps serving, retry when the node emits 'available'`);
    }
  }

  /** Runs etcd calls; a failure makes the node unavailable and rejects with ERR_LIBIPC_CLUSTER_UNAVAILABLE. */
  private async etcd<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof LibipcError) throw err;
      if (this.closed) throw new ClosedError(`node '${this.nodeName}' left the cluster during ${what}`);
      // Credentials or permissions: etcd answered, retrying will not help.
      const refused = refusal(err, this.identity);
      if (refused) throw refused;
      this.availability.lost(err);
      throw unavailable(what, err);
    }
  }
}

/** Traces one step of a reconcile after an outage (start, end, failure) under `NODE_DEBUG=libipc-cluster`. */
function traced<T>(node: string, what: string, p: Promise<T>): Promise<T> {
  if (!trace.enabled) return p;
  trace('%s: %s…', node, what);
  return p.then(
    (v) => (trace('%s: %s done', node, what), v),
    (err: unknown) => {
      trace('%s: %s failed: %s', node, what, (err as Error)?.message ?? err);
      throw err;
    },
  );
}
