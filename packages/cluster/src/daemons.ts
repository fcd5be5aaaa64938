import { randomBytes } from 'node:crypto';
import type { Etcd3, ICompare, IKeyValue, IRequestOp, ITxnResponse } from 'etcd3';
import {
  ClosedError,
  ClusterUnavailableError,
  ExistsError,
  InvalidArgumentError,
  LibipcError,
  NotFoundError,
  SpawnError,
  TimeoutError,
  TooLargeError,
  validateName,
} from '@libipc/shm';
import { checkArgs, isArgsSchema } from './args-schema.js';
import type { AddressBook } from './address-book.js';
import { type Keys, prefixEnd } from './keys.js';
import type { Membership } from './membership.js';
import { validateArgs } from './options.js';
import { LAUNCHER_GRACE_MS, MAX_PARKED, MAX_REQUEST_BYTES, type RequestBody, errorFrom, isName } from './request.js';
import type { DaemonSpec, Launcher, RefusedRequest } from './types.js';

export interface DaemonsContext {
  client: Etcd3;
  keys: Keys;
  node: string;
  membership: Membership;
  book: AddressBook;
  pickNode(name: string): string | undefined;
  emit(event: 'daemon-failed', payload: { launcher?: string; processName?: string; node: string; error: Error }): void;
  emit(event: 'request-refused', payload: RefusedRequest): void;
  /** Whether the node has fenced itself (its lease may be gone): it starts nothing until it has re-joined. */
  fenced(): boolean;
  /** An etcd call failed: the node goes unavailable until etcd answers. */
  etcdFailed(err: unknown): void;
  spawnTimeoutMs: number;
}

/** The outcome of an assignment transaction. */
export type Assigned =
  | { kind: 'ok'; id: string; revision: number }
  | { kind: 'exists'; node: string }
  | { kind: 'pending'; node: string }
  | { kind: 'target-gone' }
  | { kind: 'deposed' };

/** Why an assignment transaction was refused. */
export type Refused = Exclude<Assigned, { kind: 'ok' }>;

/** The outcome of a request, as the requesting node learns it. */
/** `revision`: of the target's registration of the daemon (so the asking node can wait for its book to show it). */
export type RequestOutcome = { kind: 'started'; revision: number } | { kind: 'failed'; error: LibipcError } | { kind: 'target-left' };

/** A fence: compares that must hold for the write (the leader's), and a read that tells whether it broke. */
export interface Fence {
  compare: ICompare;
  read: { key: Buffer };
  holds(kvs: Array<{ create_revision: string }>): boolean;
}


const b = (s: string) => Buffer.from(s);

const json = (v: unknown) => b(JSON.stringify(v));



/**
 * Daemons on this node: the launchers it knows, starting a daemon under an assignment (here, or by a request
 * in the target node's inbox), and running the requests addressed to it. A daemon's registration is written
 * in the same transaction that claims its assignment, before the launcher runs: a request seen twice, or two
 * assignments of the same name, start it once.
 */
export class Daemons {
  readonly launchers = new Map<string, Launcher>();
  /** Requests this node made, by id, until the target answers or leaves. */
  private readonly pending = new Map<string, { target: string; settle(outcome: RequestOutcome): void }>();
  /** Requests already handled here (name@revision): a request seen again is not claimed again. */
  private readonly handled = new Set<string>();
  /** Requests for a launcher not registered yet (they can arrive between join() and registerLauncher()). */
  private readonly parked = new Map<string, Array<{ name: string; kv: IKeyValue; timer: NodeJS.Timeout }>>();
  /** Names whose claim transaction is in flight here (a count: two claims of one name can race). */
  private readonly claims = new Map<string, number>();
  private closed = false;

  constructor(private readonly ctx: DaemonsContext) {}

  registerLauncher(name: string, launcher: Launcher): void {
    validateName(name, 'launcher name');
    const l = launcher as Partial<Launcher> | null;
    if (typeof l !== 'object' || l === null || typeof l.spawn !== 'function') {
      throw new InvalidArgumentError(`launcher '${name}' must be an object with a spawn(daemon) method (and optionally stop(daemon), recover())`);
    }
    for (const m of ['stop', 'recover'] as const) {
      if (l[m] !== undefined && typeof l[m] !== 'function') throw new InvalidArgumentError(`launcher '${name}': ${m} must be a function when given`);
    }
    if (l.argsSchema !== undefined && !isArgsSchema(l.argsSchema)) {
      throw new InvalidArgumentError(`launcher '${name}': argsSchema must be a Standard Schema (zod, valibot, arktype…), an object with safeParse, or a function`);
    }
    if (l.keepRunningWhenFenced !== undefined && typeof l.keepRunningWhenFenced !== 'boolean') {
      throw new InvalidArgumentError(`launcher '${name}': keepRunningWhenFenced must be true or false when given`);
    }
    if (this.launchers.has(name)) throw new ExistsError(`a launcher named '${name}' is already registered on this node`);
    this.launchers.set(name, launcher);
    const waiting = this.parked.get(name) ?? [];
    this.parked.delete(name);
    for (const p of waiting) {
      clearTimeout(p.timer);
      this.process(p.name, p.kv);
    }
  }

  /** A spec from a caller or from recover(): names checked, args made plain JSON. */
  normalize(raw: unknown, defaultLauncher?: string): DaemonSpec {
    const spec = raw as Partial<DaemonSpec> | null;
    if (typeof spec !== 'object' || spec === null) throw new InvalidArgumentError(`a daemon spec must be an object { launcher, processName, args? }, got ${typeof raw}`);
    const launcher = spec.launcher ?? defaultLauncher;
    validateName(launcher, 'launcher name');
    validateName(spec.processName, 'process name');
    const args = validateArgs(spec.args, `daemon '${spec.processName}'`);
    return args === undefined ? { launcher, processName: spec.processName } : { launcher, processName: spec.processName, args };
  }

  private registration(spec: DaemonSpec): Buffer {
    return json({ launcher: spec.launcher, args: spec.args });
  }

  private nobodyHolds(name: string): ICompare[] {
    const prefix = this.ctx.keys.procPrefix(name);
    return [
      { key: b(prefix), range_end: prefixEnd(prefix), target: 'Create', result: 'Equal', create_revision: 0 },
      { key: b(this.ctx.keys.assignment(name)), target: 'Create', result: 'Equal', create_revision: 0 },
    ];
  }

  private whyRefused(name: string, fence: Fence | undefined): IRequestOp[] {
    const prefix = this.ctx.keys.procPrefix(name);
    return [
      { request_range: { key: b(prefix), range_end: prefixEnd(prefix), limit: 1 } },
      { request_range: { key: b(this.ctx.keys.assignment(name)) } },
      ...(fence ? [{ request_range: fence.read }] : []),
    ];
  }

  private refused(r: ITxnResponse, fence: Fence | undefined): Refused {
    const holder = r.responses[0]?.response_range.kvs[0];
    const pending = r.responses[1]?.response_range.kvs[0];
    if (fence && !fence.holds(r.responses[2]?.response_range.kvs ?? [])) return { kind: 'deposed' };
    if (holder) return { kind: 'exists', node: holder.key.toString().split('/').pop()! };
    if (pending) return { kind: 'pending', node: String((JSON.parse(pending.value.toString()) as { node?: string }).node) };
    return { kind: 'target-gone' };
  }

  /**
   * Starts `spec` on this node: registers it (if nobody holds or is starting it, and the fence holds), then
   * runs the launcher. A launcher failure withdraws the registration and rejects with ERR_LIBIPC_SPAWN.
   */
  async startHere(spec: DaemonSpec, fence?: Fence): Promise<Assigned> {
    const r = await this.claimHere(spec, fence);
    if (r.kind !== 'ok') return r;
    await r.started;
    return { kind: 'ok', id: r.id, revision: r.revision };
  }

  /**
   * startHere without waiting for the launcher: resolves once the registration is written, with `started`
   * for the launcher's outcome (the leader must not wait on a slow spawn to place other daemons).
   */
  async claimHere(spec: DaemonSpec, fence?: Fence): Promise<Refused | { kind: 'ok'; id: string; revision: number; started: Promise<void> }> {
    const launcher = this.launchers.get(spec.launcher);
    if (!launcher) throw new NotFoundError(`no launcher '${spec.launcher}' on node '${this.ctx.node}'; call registerLauncher('${spec.launcher}', …) on every node first`);
    this.claimStart(spec.processName);
    try {
      const r = await this.ctx.client.kv.txn({
        compare: [...(fence ? [fence.compare] : []), ...this.nobodyHolds(spec.processName)],
        success: [this.ctx.membership.registrationPut(spec.processName, this.registration(spec))],
        failure: this.whyRefused(spec.processName, fence),
      });
      if (!r.succeeded) return this.refused(r, fence);
      return { kind: 'ok', id: '', revision: Number(r.header.revision), started: this.run(launcher, spec) };
    } finally {
      // run() has recorded the daemon in the process table (synchronously) by now, if it was claimed.
      this.claimEnd(spec.processName);
    }
  }

  /** Whether a claim of `name` is in flight on this node (its outcome not known yet). */
  isClaiming(name: string): boolean {
    return this.claims.has(name);
  }

  private claimStart(name: string): void {
    this.claims.set(name, (this.claims.get(name) ?? 0) + 1);
  }

  private claimEnd(name: string): void {
    const n = (this.claims.get(name) ?? 1) - 1;
    if (n > 0) this.claims.set(name, n);
    else this.claims.delete(name);
  }

  /** Checks `args` against the launcher's argsSchema (ERR_LIBIPC_INVALID_ARGUMENT); a launcher it lacks passes. */
  async checkArgs(spec: DaemonSpec): Promise<void> {
    const launcher = this.launchers.get(spec.launcher);
    if (launcher) await checkArgs(spec.launcher, launcher, spec.processName, spec.args);
  }

  /** Runs the launcher for a daemon whose registration is written; withdraws it if the launcher fails. */
  private async run(launcher: Launcher, spec: DaemonSpec): Promise<void> {
    if (this.ctx.fenced()) {
      // Our lease may be gone: a copy may start elsewhere at any moment. Take the registration back.
      await this.ctx.client.kv.deleteRange({ key: b(this.ctx.keys.proc(spec.processName, this.ctx.node)) }).catch(() => undefined);
      throw new ClusterUnavailableError(`node '${this.ctx.node}' is fenced (it could not renew its lease); '${spec.processName}' was not started`);
    }
    if (this.closed) {
      // The node is leaving (its daemons are being stopped): take the registration back, start nothing.
      await this.ctx.client.kv.deleteRange({ key: b(this.ctx.keys.proc(spec.processName, this.ctx.node)) }).catch(() => undefined);
      throw new ClosedError(`node '${this.ctx.node}' is leaving the cluster; '${spec.processName}' was not started`);
    }
    this.ctx.membership.processes.set(spec.processName, { daemon: spec });
    try {
      await launcher.spawn(spec);
    } catch (err) {
      this.ctx.membership.processes.delete(spec.processName);
      await this.ctx.client.kv.deleteRange({ key: b(this.ctx.keys.proc(spec.processName, this.ctx.node)) }).catch((e: unknown) => this.ctx.etcdFailed(e));
      const message = err instanceof Error ? err.message : String(err);
      throw new SpawnError(`launcher '${spec.launcher}' failed to start '${spec.processName}' on node '${this.ctx.node}': ${message}`, { cause: err });
    }
  }

  /**
   * Asks `target` to start `spec`: writes the assignment marker and the request under the target's lease
   * (both vanish if it dies), if nobody holds or is starting the name, the target is still the member we
   * know, and the fence holds. `onOutcome` hears how it ended.
   */
  async request(spec: DaemonSpec, target: string, fence: Fence | undefined, onOutcome: (o: RequestOutcome) => void): Promise<Assigned> {
    const lease = this.ctx.book.nodeLease(target);
    if (lease === undefined) return { kind: 'target-gone' };
    const id = `${this.ctx.node}.${Date.now().toString(36)}.${randomBytes(4).toString('hex')}`;
    const body: RequestBody = { ...spec, id, replyTo: this.ctx.node };
    const nodeKey = b(this.ctx.keys.node(target));
    this.pending.set(id, { target, settle: onOutcome });
    let r: ITxnResponse;
    try {
      r = await this.ctx.client.kv.txn({
        compare: [...(fence ? [fence.compare] : []), { key: nodeKey, target: 'Lease', result: 'Equal', lease }, ...this.nobodyHolds(spec.processName)],
        success: [
          { request_put: { key: b(this.ctx.keys.assignment(spec.processName)), value: json({ node: target, id }), lease } },
          { request_put: { key: b(this.ctx.keys.request(target, spec.processName)), value: json(body), lease } },
        ],
        failure: this.whyRefused(spec.processName, fence),
      });
    } catch (err) {
      this.pending.delete(id);
      throw err;
    }
    if (r.succeeded) return { kind: 'ok', id, revision: Number(r.header.revision) };
    this.pending.delete(id);
    return this.refused(r, fence);
  }

  /** A request in our inbox: claim it (once), start the daemon, answer the node that asked. */
  onRequest(name: string, kv: IKeyValue): void {
    const tag = `${name}@${kv.mod_revision}`;
    if (this.handled.has(tag) || this.closed) return;
    this.handled.add(tag);
    if (this.handled.size > 10_000) this.handled.delete(this.handled.values().next().value!);
    if (kv.value.length > MAX_REQUEST_BYTES) {
      const error = new TooLargeError(`a request to start '${name}' is ${kv.value.length} bytes, the most is ${MAX_REQUEST_BYTES}: refused`);
      this.guard(this.refuse(name, kv, undefined, error));
      return;
    }
    let launcher: unknown;
    try {
      launcher = (JSON.parse(kv.value.toString()) as Partial<RequestBody>).launcher;
    } catch {
      launcher = undefined;
    }
    const parkedCount = [...this.parked.values()].reduce((n, l) => n + l.length, 0);
    if (typeof launcher === 'string' && !this.launchers.has(launcher) && isName(launcher) && parkedCount < MAX_PARKED) {
      // Give the application a moment to register it (it may have just joined); then refuse the request.
      const list = this.parked.get(launcher) ?? [];
      this.parked.set(launcher, list);
      const entry = { name, kv, timer: setTimeout(() => {
        list.splice(list.indexOf(entry), 1);
        this.process(name, kv);
      }, LAUNCHER_GRACE_MS).unref() };
      list.push(entry);
      return;
    }
    this.process(name, kv);
  }

  private process(name: string, kv: IKeyValue): void {
    if (this.closed) return;
    this.guard(this.handleRequest(name, kv), `${name}@${kv.mod_revision}`);
  }

  /** etcd failed us mid-way: forget the tag so that the inbox re-read after the outage handles it again. */
  private guard(work: Promise<void>, tag?: string): void {
    work.catch((err: unknown) => {
      if (tag) this.handled.delete(tag);
      this.ctx.etcdFailed(err);
    });
  }

  /**
   * A request this node will not run (oversize, malformed, unknown launcher, args its launcher's schema refuses):
   * withdraw it, say so ('request-refused', and 'daemon-failed' as before), and answer the node that asked.
   */
  private async refuse(name: string, kv: IKeyValue, body: Partial<RequestBody> | undefined, error: LibipcError): Promise<void> {
    const { client, keys, node } = this.ctx;
    await client.kv.txn({
      compare: [{ key: kv.key, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision }],
      success: [{ request_delete_range: { key: kv.key } }, { request_delete_range: { key: b(keys.assignment(name)) } }],
      failure: [],
    });
    const launcher = typeof body?.launcher === 'string' ? body.launcher : undefined;
    const from = typeof body?.replyTo === 'string' ? body.replyTo : undefined;
    this.ctx.emit('request-refused', { processName: name, ...(launcher ? { launcher } : {}), ...(from ? { from } : {}), error });
    this.ctx.emit('daemon-failed', { ...(launcher ? { launcher } : {}), processName: name, node, error });
    if (body && typeof body.id === 'string' && from) await this.reply(body as RequestBody, false, error, 0);
  }

  private async handleRequest(name: string, kv: IKeyValue): Promise<void> {
    const { client, keys, node } = this.ctx;
    const reqKey = kv.key;
    const sameRequest: ICompare = { key: reqKey, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision };
    const withdraw = () =>
      client.kv.txn({
        compare: [sameRequest],
        success: [{ request_delete_range: { key: reqKey } }, { request_delete_range: { key: b(keys.assignment(name)) } }],
        failure: [],
      });
    let raw: unknown;
    try {
      raw = JSON.parse(kv.value.toString());
    } catch {
      raw = undefined;
    }
    const body = (typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : undefined) as RequestBody | undefined;
    let spec: DaemonSpec;
    try {
      if (!body) throw new InvalidArgumentError(`a request to start '${name}' is not a JSON object: refused`);
      spec = this.normalize(body);
      if (spec.processName !== name) throw new InvalidArgumentError(`request for '${name}' names '${spec.processName}'`);
    } catch (err) {
      await this.refuse(name, kv, body, err instanceof LibipcError ? err : new InvalidArgumentError(String(err)));
      return;
    }
    let claimed = 0;
    const answer = (ok: boolean, error?: LibipcError) => this.reply(body!, ok, error, claimed);
    const launcher = this.launchers.get(spec.launcher);
    if (!launcher) {
      const error = new NotFoundError(`no launcher '${spec.launcher}' on node '${node}'; call registerLauncher('${spec.launcher}', …) on every node`);
      await this.refuse(name, kv, body, error);
      return;
    }
    try {
      await checkArgs(spec.launcher, launcher, name, spec.args);
    } catch (err) {
      await this.refuse(name, kv, body, err as LibipcError);
      return;
    }
    const prefix = keys.procPrefix(name);
    this.claimStart(name);
    const claim = await client.kv
      .txn({
      compare: [sameRequest, { key: b(prefix), range_end: prefixEnd(prefix), target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [
        { request_delete_range: { key: reqKey } },
        { request_delete_range: { key: b(keys.assignment(name)) } },
        this.ctx.membership.registrationPut(name, this.registration(spec)),
      ],
      failure: [{ request_range: { key: reqKey } }, { request_range: { key: b(prefix), range_end: prefixEnd(prefix), limit: 1 } }],
      })
      .catch((err: unknown) => {
        this.claimEnd(name);
        throw err;
      });
    claimed = Number(claim.header.revision);
    if (!claim.succeeded) {
      this.claimEnd(name);
      const stillThere = claim.responses[0]?.response_range.kvs[0]?.mod_revision === kv.mod_revision;
      if (!stillThere) return; // claimed already (this request was seen twice)
      await withdraw();
      const holder = claim.responses[1]?.response_range.kvs[0]?.key.toString().split('/').pop();
      await answer(false, new ExistsError(`'${name}' already runs on node '${holder}'`));
      return;
    }
    // run() records the daemon in the process table at once: from then on it is known, not a stray.
    const running = this.run(launcher, spec);
    this.claimEnd(name);
    try {
      await running;
    } catch (err) {
      this.ctx.emit('daemon-failed', { ...spec, node, error: err as Error });
      await answer(false, err as LibipcError);
      return;
    }
    await answer(true);
  }

  /** Writes the outcome into the asking node's inbox, under its lease (gone if it died). */
  private async reply(body: RequestBody, ok: boolean, error: LibipcError | undefined, revision: number): Promise<void> {
    if (!body.replyTo || typeof body.id !== 'string') return;
    if (body.replyTo === this.ctx.node) {
      this.settle(body.id, ok ? { kind: 'started', revision } : { kind: 'failed', error: error! });
      return;
    }
    const lease = this.ctx.book.nodeLease(body.replyTo);
    if (lease === undefined) return;
    const value = json(ok ? { ok, revision } : { ok, code: error?.code, message: error?.message });
    await this.ctx.client.kv.put({ key: b(this.ctx.keys.reply(body.replyTo, body.id)), value, lease }).catch(() => undefined);
  }

  /** A reply in our inbox. */
  onReply(id: string, kv: IKeyValue): void {
    void this.ctx.client.kv.deleteRange({ key: kv.key }).catch(() => undefined);
    let r: { ok?: boolean; code?: string; message?: string; revision?: number };
    try {
      r = JSON.parse(kv.value.toString()) as typeof r;
    } catch {
      return;
    }
    this.settle(
      id,
      r.ok === true
        ? { kind: 'started', revision: Number(r.revision) || 0 }
        : { kind: 'failed', error: errorFrom(r.code, String(r.message ?? 'the daemon could not be started')) },
    );
  }

  private settle(id: string, outcome: RequestOutcome): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.settle(outcome);
  }

  /** A node left: its requests died with its lease. */
  nodeLeft(node: string): void {
    for (const [id, p] of [...this.pending]) if (p.target === node) this.settle(id, { kind: 'target-left' });
  }

  /** Waits for the outcome of request `id` (made with a settle that resolves this). */
  static waitOutcome(timeoutMs: number, target: string, name: string): { settle(o: RequestOutcome): void; outcome: Promise<RequestOutcome> } {
    let settle!: (o: RequestOutcome) => void;
    const outcome = new Promise<RequestOutcome>((resolve) => {
      const timer = setTimeout(
        () =>
          resolve({
            kind: 'failed',
            error: new TimeoutError(`node '${target}' did not confirm starting '${name}' within ${timeoutMs} ms; it may still start it (locate() will show it)`),
          }),
        timeoutMs,
      );
      settle = (o) => {
        clearTimeout(timer);
        resolve(o);
      };
    });
    return { settle, outcome };
  }

  /** Stops the daemons launchers started here (on leave). Each stop is bounded; failures are reported. */
  async stopAll(timeoutMs: number): Promise<void> {
    this.closed = true;
    for (const list of this.parked.values()) for (const p of list) clearTimeout(p.timer);
    this.parked.clear();
    const daemons = [...this.ctx.membership.processes.values()].flatMap((p) => (p.daemon ? [p.daemon] : []));
    await this.stop(daemons, timeoutMs);
    for (const id of [...this.pending.keys()]) {
      this.settle(id, { kind: 'failed', error: new ClosedError(`node '${this.ctx.node}' left the cluster before the daemon was confirmed`) });
    }
  }

  /** Stops daemons (e.g. ones another node runs now); never throws. */
  async stop(daemons: DaemonSpec[], timeoutMs: number): Promise<void> {
    await Promise.all(
      daemons.map(async (d) => {
        const stop = this.launchers.get(d.launcher)?.stop;
        if (!stop) return;
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            stop.call(this.launchers.get(d.launcher), d),
            new Promise((_, reject) => (timer = setTimeout(() => reject(new TimeoutError(`stop of '${d.processName}' took over ${timeoutMs} ms`)), timeoutMs))),
          ]);
        } catch (err) {
          this.ctx.emit('daemon-failed', { ...d, node: this.ctx.node, error: err as Error });
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }
}
