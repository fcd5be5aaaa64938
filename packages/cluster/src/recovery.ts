import { LibipcError, TimeoutError } from '@libipc/shm';
import type { AddressBook } from './address-book.js';
import { type Daemons, Daemons as DaemonsClass, type Fence } from './daemons.js';
import type { Leadership } from './leader.js';
import type { DaemonPlacement, DaemonSpec } from './types.js';

export interface RecoveryContext {
  node: string;
  daemons: Daemons;
  book: AddressBook;
  leadership: Leadership;
  pickNode(name: string): string | undefined;
  available(): boolean;
  emit(event: 'daemon-placed' | 'daemon-recovered', payload: DaemonPlacement): void;
  emit(event: 'daemon-failed', payload: { launcher?: string; processName?: string; node: string; error: Error }): void;
  etcdFailed(err: unknown): void;
  spawnTimeoutMs: number;
}

/** Assignments written at once in one pass: enough to re-place a big node's daemons quickly, few enough for etcd. */
const CONCURRENCY = 16;

/**
 * The leader's recovery: asks every launcher's recover() for the daemons that should exist and places each
 * one that runs nowhere (and is not being started) on pickNode(name). It runs when this node becomes leader,
 * when a node leaves or (re-)joins, when etcd comes back, and every `intervalMs`; passes never overlap (a
 * trigger during a pass runs one more). Every assignment carries the leader's fence.
 */
export class Recovery {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Daemons this leader assigned to another node, until that node confirms or leaves. */
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly ctx: RecoveryContext,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.trigger(), this.intervalMs).unref();
  }

  /** No more passes; resolves when the one running (if any) has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.inFlight.clear();
    await this.running;
  }

  trigger(): void {
    if (this.stopped || !this.ctx.leadership.isLeader || !this.ctx.available()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = undefined));
  }

  /** Leadership ended: forget what this leader was waiting for. */
  reset(): void {
    this.inFlight.clear();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        this.ctx.etcdFailed(err);
        return;
      }
    } while (this.again && !this.stopped && this.ctx.leadership.isLeader && this.ctx.available());
  }

  private fence(): Fence | undefined {
    const { leadership } = this.ctx;
    const compare = leadership.fenceCompare();
    const read = leadership.fenceRead();
    if (!compare || !read) return undefined;
    return { compare, read, holds: (kvs) => leadership.stillLeads(kvs) };
  }

  /**
   * The daemons every launcher says should exist, one spec per name. A recover() that does not finish within
   * spawnTimeoutMs is given up for this pass (reported), so that one stuck launcher cannot stop recovery.
   */
  private async wanted(): Promise<DaemonSpec[]> {
    const specs = new Map<string, DaemonSpec>();
    for (const [name, launcher] of this.ctx.daemons.launchers) {
      if (!launcher.recover) continue;
      const deadline = Date.now() + this.ctx.spawnTimeoutMs;
      let timer: NodeJS.Timeout | undefined;
      let it: AsyncIterator<DaemonSpec> | undefined;
      try {
        const source = launcher.recover();
        // An array (or any sync iterable) is accepted too.
        it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (async function* () {
          yield* source;
        })();
        for (;;) {
          const late = new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new TimeoutError(`launcher '${name}': recover() did not finish within ${this.ctx.spawnTimeoutMs} ms`)),
              Math.max(0, deadline - Date.now()),
            );
          });
          const next = await Promise.race([it.next(), late]);
          clearTimeout(timer);
          if (next.done) break;
          try {
            const spec = this.ctx.daemons.normalize(next.value, name);
            await this.ctx.daemons.checkArgs(spec);
            if (!specs.has(spec.processName)) specs.set(spec.processName, spec);
          } catch (error) {
            this.ctx.emit('daemon-failed', { launcher: name, node: this.ctx.node, error: error as Error });
          }
        }
      } catch (error) {
        clearTimeout(timer);
        void Promise.resolve(it?.return?.()).catch(() => undefined);
        this.ctx.emit('daemon-failed', { launcher: name, node: this.ctx.node, error: error as Error });
      }
    }
    return [...specs.values()];
  }

  private async pass(): Promise<void> {
    const fence = this.fence();
    if (!fence) return;
    const todo = (await this.wanted()).filter((s) => this.ctx.book.locate(s.processName) === undefined && !this.inFlight.has(s.processName));
    let deposed = false;
    for (let i = 0; i < todo.length && !deposed; i += CONCURRENCY) {
      if (this.stopped || !this.ctx.leadership.isLeader || !this.ctx.available()) return;
      const outcomes = await Promise.all(todo.slice(i, i + CONCURRENCY).map((spec) => this.place(spec, fence)));
      deposed = outcomes.includes('deposed');
    }
    if (deposed) {
      this.reset();
      this.ctx.leadership.deposed();
    }
  }

  private async place(spec: DaemonSpec, fence: Fence): Promise<'ok' | 'skipped' | 'deposed'> {
    const { daemons, node } = this.ctx;
    const target = this.ctx.pickNode(spec.processName);
    if (target === undefined) return 'skipped';
    if (target === node) {
      let r: Awaited<ReturnType<Daemons['claimHere']>>;
      try {
        r = await daemons.claimHere(spec, fence);
      } catch (error) {
        // A launcher this node lacks is the daemon's problem; anything else is etcd's.
        if (!(error instanceof LibipcError)) throw error;
        this.ctx.emit('daemon-failed', { ...spec, node, error });
        return 'skipped';
      }
      if (r.kind === 'deposed') return 'deposed';
      if (r.kind !== 'ok') return 'skipped';
      this.ctx.emit('daemon-placed', { ...spec, node });
      // The launcher runs on its own: a slow spawn does not hold up the placement of other daemons.
      r.started.then(
        () => this.ctx.emit('daemon-recovered', { ...spec, node }),
        (error: unknown) => this.ctx.emit('daemon-failed', { ...spec, node, error: error as Error }),
      );
      return 'ok';
    }
    const w = DaemonsClass.waitOutcome(this.ctx.spawnTimeoutMs, target, spec.processName);
    const r = await daemons.request(spec, target, fence, w.settle);
    if (r.kind !== 'ok') {
      w.settle({ kind: 'target-left' });
      return r.kind === 'deposed' ? 'deposed' : 'skipped';
    }
    this.inFlight.add(spec.processName);
    this.ctx.emit('daemon-placed', { ...spec, node: target });
    void w.outcome.then((o) => {
      this.inFlight.delete(spec.processName);
      if (o.kind === 'started') this.ctx.emit('daemon-recovered', { ...spec, node: target });
      else if (o.kind === 'failed') this.ctx.emit('daemon-failed', { ...spec, node: target, error: o.error });
      else this.trigger();
    });
    return 'ok';
  }
}
