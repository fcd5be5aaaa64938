import { hostname } from 'node:os';
import { type Etcd3, type ICompare, type IRequestOp, type Lease } from 'etcd3';
import { ExistsError } from '@libipc/shm';
import { Keepalive } from './keepalive.js';
import { type Keys, prefixEnd } from './keys.js';
import type { DaemonSpec } from './types.js';

/** A name this node registered; `daemon` when a launcher started it here (so it can be stopped). */
export interface LocalProcess {
  daemon?: DaemonSpec;
}

export interface MembershipHooks {
  /** The lease is gone: etcd was unreachable, or we were cut off, for longer than the TTL. */
  leaseLost(err: unknown): void;
  /** A keepalive failed or answered late: etcd may be unreachable. */
  keepaliveFailed(err: unknown): void;
  /** etcd renewed the lease on a keepalive (or granted it on a request) sent at `sentAt` (performance.now()). */
  renewed(sentAt: number): void;
}

const b = (s: string) => Buffer.from(s);

/**
 * This node's membership: one lease, kept alive by etcd3; the node key and every registration of this node
 * live under it, so a crashed node vanishes from every address book within the TTL with no cleanup code.
 * After an outage it re-joins: a new lease if the old one is gone, and its names registered again, except
 * those another node took over in the meantime (their daemons are returned, to be stopped here).
 */
export class Membership {
  private lease: Lease | undefined;
  private keepalive: Keepalive | undefined;
  /** etcd said the lease is gone (a keepalive answered TTL 0). */
  private expired = false;
  /** The lease's id, once granted. */
  leaseId = '';
  /** Names this node holds, for re-registration after an outage. */
  readonly processes = new Map<string, LocalProcess>();
  private readonly writing = new Set<string>();
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keys,
    readonly nodeName: string,
    private readonly ttl: number,
    private readonly hooks: MembershipHooks,
  ) {}

  private nodeRecord(): Buffer {
    return b(JSON.stringify({ host: hostname(), pid: process.pid, joinedAt: new Date().toISOString() }));
  }

  private async grant(): Promise<Lease> {
    // Our own keepalive loop (not etcd3's): it knows when each renewed keepalive was sent, for self-fencing.
    const lease = this.client.lease(this.ttl, { autoKeepAlive: false });
    lease.on('lost', (err) => lease === this.lease && !this.closed && this.hooks.leaseLost(err));
    const sentAt = performance.now();
    try {
      this.leaseId = await lease.grant();
    } catch (err) {
      lease.release();
      throw err;
    }
    this.lease = lease;
    this.expired = false;
    this.hooks.renewed(sentAt);
    const keepalive: Keepalive = new Keepalive(this.client, this.leaseId, this.ttl, {
      renewed: (at) => keepalive === this.keepalive && !this.closed && this.hooks.renewed(at),
      failed: (err) => keepalive === this.keepalive && !this.closed && this.hooks.keepaliveFailed(err),
      lost: (err) => {
        if (keepalive !== this.keepalive || this.closed) return;
        this.expired = true;
        this.hooks.leaseLost(err);
      },
    });
    this.keepalive?.close();
    this.keepalive = keepalive;
    keepalive.start();
    return lease;
  }

  /** Grants the lease and creates the node key; ERR_LIBIPC_EXISTS if a live node already has this name. */
  async join(): Promise<void> {
    const lease = await this.grant();
    const key = b(this.keys.node(this.nodeName));
    const r = await this.client.kv.txn({
      compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key, value: this.nodeRecord(), lease: this.leaseId } }],
      failure: [],
    });
    if (!r.succeeded) {
      await lease.revoke().catch(() => undefined);
      throw new ExistsError(
        `node '${this.nodeName}' is already a member of this cluster (a live process holds the name); pick another nodeName, or wait for a crashed node's lease (${this.ttl} s) to run out`,
      );
    }
  }

  /** A put of this node's registration of `name`, under its lease. */
  registrationPut(name: string, value: Buffer): IRequestOp {
    return { request_put: { key: b(this.keys.proc(name, this.nodeName)), value, lease: this.leaseId } };
  }

  /** Registers `name` under the lease; resolves with the revision of the write. */
  async register(name: string, value: Buffer, local: LocalProcess): Promise<number> {
    this.writing.add(name);
    try {
      const r = await this.client.kv.txn({ compare: [], success: [this.registrationPut(name, value)], failure: [] });
      this.processes.set(name, local);
      return Number(r.header.revision);
    } finally {
      this.writing.delete(name);
    }
  }

  /** Whether a register() of `name` is in flight (its outcome not known yet). */
  isWriting(name: string): boolean {
    return this.writing.has(name);
  }

  /**
   * Withdraws registrations of this node that it does not know of: a write whose answer was lost when etcd
   * went away (e.g. a claim committed just before the connection broke) must not leave a daemon "located"
   * here that never started.
   */
  async sweep(registered: string[], busy: (name: string) => boolean): Promise<void> {
    for (const name of registered) {
      if (this.processes.has(name) || this.writing.has(name) || busy(name)) continue;
      await this.client.kv.deleteRange({ key: b(this.keys.proc(name, this.nodeName)) });
    }
  }

  /** Withdraws `name`; resolves with the revision of the write. */
  async unregister(name: string): Promise<number> {
    const r = await this.client.kv.deleteRange({ key: b(this.keys.proc(name, this.nodeName)) });
    this.processes.delete(name);
    return Number(r.header.revision);
  }

  /**
   * After an outage: if our lease survived (etcd renews leases when it restarts), our keys are intact and
   * nothing changes. Otherwise a new lease, the node key again, and every name again, with no duplicates:
   * a daemon that another node started meanwhile is not registered again but returned, to be stopped here.
   */
  async rejoin(): Promise<{ renewed: boolean; displaced: DaemonSpec[] }> {
    const old = this.lease;
    if (old && !this.expired) {
      const ttl = await this.client.leaseClient.leaseTimeToLive({ ID: this.leaseId });
      if (Number(ttl.TTL) >= 0) return { renewed: false, displaced: [] };
    }
    old?.removeAllListeners('lost');
    old?.release();
    this.keepalive?.close();
    this.keepalive = undefined;
    const oldId = this.leaseId;
    await this.grant();
    const nodeKey = b(this.keys.node(this.nodeName));
    await this.client.kv.put({ key: nodeKey, value: this.nodeRecord(), lease: this.leaseId });
    const displaced: DaemonSpec[] = [];
    for (const [name, local] of [...this.processes]) {
      if (!(await this.reRegister(name, local))) {
        this.processes.delete(name);
        if (local.daemon) displaced.push(local.daemon);
      }
    }
    // Keys still under the old lease (requests addressed to us then) go with it; our own moved already.
    if (oldId) await this.client.leaseClient.leaseRevoke({ ID: oldId }).catch(() => undefined);
    return { renewed: true, displaced };
  }

  /** Registers `name` again under the current lease unless another node holds it now. False: displaced. */
  private async reRegister(name: string, local: LocalProcess): Promise<boolean> {
    const value = b(JSON.stringify(local.daemon ? { launcher: local.daemon.launcher, args: local.daemon.args } : {}));
    const prefix = this.keys.procPrefix(name);
    const mine = b(this.keys.proc(name, this.nodeName));
    const nobody: ICompare = { key: b(prefix), range_end: prefixEnd(prefix), target: 'Create', result: 'Equal', create_revision: 0 };
    const first = await this.client.kv.txn({
      compare: [nobody],
      success: [this.registrationPut(name, value)],
      failure: [{ request_range: { key: b(prefix), range_end: prefixEnd(prefix) } }],
    });
    if (first.succeeded) return true;
    const holders = first.responses[0]?.response_range.kvs ?? [];
    const others = holders.filter((kv) => !kv.key.equals(mine));
    if (others.length === 0 || !local.daemon) {
      // Only our own key (under the old lease): move it. A name registered by hand stays registered, even if
      // another node registered it too (the duplicate is reported); only daemons we started can be stopped.
      await this.client.kv.put({ key: mine, value, lease: this.leaseId });
      return true;
    }
    // Another node runs it now (re-placed while we were away): drop our registration, if any.
    await this.client.kv.deleteRange({ key: mine });
    return false;
  }

  /** Revokes the lease: the node key, its registrations and requests addressed to it go at once. */
  async leave(): Promise<void> {
    this.closed = true;
    this.keepalive?.close();
    this.keepalive = undefined;
    const lease = this.lease;
    this.lease = undefined;
    if (lease) await lease.revoke().catch(() => undefined);
  }
}
