import { EventEmitter, once } from 'node:events';
import { contractEnv, type ExitStatus, ManagedProcess } from '@libipc/process';
import type { ServiceEntry, ServiceRegistry } from '@libipc/registry';
import { IllegalStateError, isAlive, option, parseOptions, watchExit } from '@libipc/shm';
import { type GroupConfig, type ResolvedGroupConfig, resolveGroupConfig } from './config.js';
import { instanceName } from './environment.js';

export type Role = 'primary' | 'standby' | 'starting' | 'dead' | 'failed';

export interface ManagedInstance {
  id: number;
  name: string;
  role: Role;
  pid?: number;
  process?: ManagedProcess;
  entry?: ServiceEntry;
  /** The epoch in which this instance last became primary (0: never). */
  epoch: number;
}

export interface FailoverEvent {
  /** The instance that stopped being primary (undefined at the first election). */
  previous?: string;
  primary: string;
  epoch: number;
  /** From the moment the failure was known (exit event, or stale heartbeat) to the committed promotion. */
  detectedInMs: number;
  reason: 'elected' | 'exit' | 'hung' | 'forced' | 'reload';
}

/** What reload() did: each instance's old and new pid, and the handover. */
export interface GroupReloadReport {
  replaced: Array<{ name: string; oldPid?: number; newPid?: number }>;
  /** The primary before the handover, and after it. */
  previous?: string;
  primary?: string;
  epoch: number;
}

/**
 * The order reload() restarts instances in: the standbys first (lowest id first), the primary last — after a
 * fresh standby has taken over from it. Pure, for the table test.
 */
export function reloadOrder(ids: readonly number[], primaryId: number | undefined): number[] {
  const standbys = ids.filter((id) => id !== primaryId).sort((a, b) => a - b);
  return primaryId === undefined || !ids.includes(primaryId) ? standbys : [...standbys, primaryId];
}

interface Slot {
  id: number;
  name: string;
  role: Role;
  proc: ManagedProcess;
  entry?: ServiceEntry;
  epoch: number;
  /** Left running after a missed heartbeat ('fence'): not eligible until it beats again. */
  fenced: boolean;
  everRan: boolean;
  /** Stops watching the current entry's death lease. */
  unwatch?: AbortController;
}

const LEFTOVER_GRACE_MS = 3_000;

/**
 * A pool of redundant instances of one service: one primary, the rest standby. The primary's exit is seen
 * from the exit event and a standby is promoted at once through the registry's claimPrimary (the epoch only
 * grows, so a stale primary knows it was replaced). Dead instances are respawned in the background.
 * Events: 'primary' (every new primary), 'elected' (a primary where there was none, e.g. the first),
 * 'failover' (a primary replaced a previous one: `previous` is always set), 'respawn', 'instance-died' (its death
 * lease broke: it is dying, its exit event follows), 'instance-exit', 'degraded',
 * 'failed', 'registry-error' (the registry could not be read or written, e.g. a corrupt record; retried).
 */
export class ServiceGroup extends EventEmitter {
  readonly registry: ServiceRegistry;
  readonly config: ResolvedGroupConfig;
  private readonly slots: Slot[] = [];
  private primaryId: number | undefined;
  private epoch = 0;
  private failedOverSinceCheck = false;
  private degraded = false;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private watchdog: NodeJS.Timeout | undefined;
  /** The primary that was lost while no standby could take over: the next promotion replaces it. */
  private lostPrimary: { slot: Slot; reason: FailoverEvent['reason']; knownAt: number } | undefined;
  private reloading: Promise<GroupReloadReport> | undefined;

  constructor(registry: ServiceRegistry, config: GroupConfig) {
    super();
    this.registry = registry;
    this.config = resolveGroupConfig(config);
  }

  get serviceName(): string {
    return this.config.serviceName;
  }

  /** Stops leftovers of an earlier host, spawns every instance, waits for them to register, elects the lowest id. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new IllegalStateError(`group '${this.serviceName}' was already started; create a new ServiceGroup`);
    this.state = 'starting';
    await this.stopLeftovers();
    // The host's own lease: members exit the moment this process dies (their pidfd watch is the back-up).
    this.guarded(() => this.registry.holdGroupLease(this.serviceName));
    for (let id = 0; id < this.config.replicas; id++) this.slots.push(this.createSlot(id));
    const results = await Promise.allSettled(this.slots.map((s) => s.proc.start()));
    if (this.state !== 'starting') return; // stop() was called meanwhile
    if (!this.slots.some((s) => s.role === 'standby')) {
      const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      await this.stop(0);
      throw first?.reason ?? new IllegalStateError(`no instance of '${this.serviceName}' registered`);
    }
    this.state = 'running';
    this.epoch = this.registry.groupState(this.serviceName).epoch;
    this.promote(undefined, 'elected', performance.now());
    if (this.config.heartbeatTimeoutMs !== undefined) this.startWatchdog(this.config.heartbeatTimeoutMs);
  }

  /** Seed parity for callers that poll: true when a failover happened since the last call. */
  healthCheck(): boolean {
    const happened = this.failedOverSinceCheck;
    this.failedOverSinceCheck = false;
    return happened;
  }

  primary(): ManagedInstance | undefined {
    const slot = this.primaryId === undefined ? undefined : this.slots[this.primaryId];
    return slot && this.view(slot);
  }

  instances(): ManagedInstance[] {
    return this.slots.map((s) => this.view(s));
  }

  /** Instances whose process is running (primary, standby, or starting). */
  aliveCount(): number {
    return this.slots.filter((s) => s.proc.pid !== undefined && isAlive(s.proc.pid)).length;
  }

  /** Kills the primary (SIGKILL) and resolves once a standby is promoted; false when there is no standby to promote. */
  async forceFailover(): Promise<boolean> {
    const primary = this.primaryId === undefined ? undefined : this.slots[this.primaryId];
    if (!primary || primary.proc.pid === undefined || this.candidates().length === 0) return false;
    const promoted = once(this, 'failover');
    process.kill(primary.proc.pid, 'SIGKILL');
    await promoted;
    return true;
  }

  /**
   * Restarts every instance with no moment without a primary: the standbys first, one at a time, each waited for
   * until it is registered again; then a fresh standby takes over from the primary with one epoch change (the old
   * primary's GroupMember reads the new epoch and stops acting as primary: fenced), and the old primary is
   * restarted as a standby. Clients see one 'failover' (reason 'reload'). A standby that does not come back stops
   * the reload before the handover: the primary keeps serving and the promise rejects. With one replica there is
   * no standby to hand over to: the instance is restarted and elected again (a gap). A reload in progress is joined.
   * `prepare(instance)` runs after each restarted instance is registered and before the reload goes on (and before
   * that instance can take over): bring its state up to date there (a throw stops the reload like a failed start).
   */
  reload(opts?: { graceMs?: number; prepare?: (instance: ManagedInstance) => unknown }): Promise<GroupReloadReport> {
    if (this.reloading) return this.reloading;
    if (this.state !== 'running') return Promise.reject(new IllegalStateError(`group '${this.serviceName}' is ${this.state}; reload() needs a started group`));
    let o: { graceMs?: number; prepare?: (instance: ManagedInstance) => unknown };
    try {
      o = parseOptions(opts, { graceMs: option.ms(0, 3_600_000), prepare: option.custom<(i: ManagedInstance) => unknown>((v) => typeof v === 'function', 'a function') }, 'reload options');
    } catch (err) {
      return Promise.reject(err);
    }
    this.reloading = this.doReload(o.graceMs ?? 3_000, o.prepare).finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async doReload(graceMs: number, prepare: ((instance: ManagedInstance) => unknown) | undefined): Promise<GroupReloadReport> {
    const replaced: GroupReloadReport['replaced'] = [];
    const previous = this.primary()?.name;
    for (const id of reloadOrder(this.slots.map((s) => s.id), this.primaryId)) {
      if (this.state !== 'running') throw new IllegalStateError(`group '${this.serviceName}' was stopped during reload()`);
      const slot = this.slots[id]!;
      if (id === this.primaryId && this.candidates().length > 0) {
        // The handover: a fresh standby claims the next epoch before the old primary is stopped.
        this.promote(slot, 'reload', performance.now());
        slot.role = 'standby';
      }
      const oldPid = slot.proc.pid;
      await slot.proc.stop(graceMs).catch(() => undefined);
      try {
        await slot.proc.start();
        await prepare?.(this.view(slot));
      } catch (err) {
        const done = replaced.map((r) => r.name).join(', ') || 'none';
        throw new IllegalStateError(
          `reload of '${this.serviceName}' stopped: ${slot.name} did not come back (${(err as Error).message}); replaced so far: ${done}; the primary ${this.primary()?.name ?? '(none)'} keeps serving`,
        );
      }
      replaced.push({ name: slot.name, oldPid, newPid: slot.proc.pid });
    }
    return { replaced, previous, primary: this.primary()?.name, epoch: this.epoch };
  }

  /** Stops every instance concurrently (SIGTERM, then SIGKILL after graceMs), removes their entries; no respawn. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    if (this.watchdog) clearInterval(this.watchdog);
    for (const s of this.slots) s.unwatch?.abort();
    await Promise.all(this.slots.map((s) => s.proc.stop(graceMs).catch(() => undefined)));
    for (const s of this.slots) {
      s.role = 'dead';
      this.registry.unregister(s.name);
    }
    this.guarded(() => this.registry.releaseGroupLease(this.serviceName));
    this.primaryId = undefined;
    this.state = 'stopped';
  }

  // ---- internals ----

  private createSlot(id: number): Slot {
    const c = this.config;
    const name = instanceName(c.serviceName, id);
    const proc = new ManagedProcess({
      name,
      command: c.executable,
      args: [...c.args, String(id)],
      cwd: c.cwd,
      env: {
        ...c.env,
        ...contractEnv({ service: c.serviceName, instanceId: id, domain: this.registry.domain }),
      },
      restart: c.restart,
      readiness: { registered: name, domain: this.registry.domain },
      readyTimeoutMs: c.spawnTimeoutMs,
      stdio: c.stdio,
      // Its own process group: Ctrl-C in the host's terminal reaches the host only.
      killTree: true,
    });
    const slot: Slot = { id, name, role: 'starting', proc, epoch: 0, fenced: false, everRan: false };
    proc.on('state', ({ to }: { to: string }) => this.onState(slot, to));
    proc.on('exit', (status: ExitStatus, pid: number) => this.onExit(slot, status, pid));
    return slot;
  }

  private onState(slot: Slot, to: string): void {
    if (this.state === 'stopping' || this.state === 'stopped') {
      slot.role = to === 'failed' ? 'failed' : 'dead';
      return;
    }
    switch (to) {
      case 'starting':
        slot.role = 'starting';
        break;
      case 'running': {
        slot.entry = this.guarded(() => this.registry.find(slot.name));
        this.watchDeath(slot);
        slot.role = 'standby';
        slot.fenced = false;
        if (slot.everRan) this.emit('respawn', { id: slot.id, name: slot.name, pid: slot.proc.pid });
        slot.everRan = true;
        if (this.state === 'running' && this.primaryId === undefined) this.promote(undefined, 'exit', performance.now());
        this.checkDegraded();
        break;
      }
      case 'failed':
        slot.role = 'failed';
        this.emit('failed', { id: slot.id, name: slot.name, reason: slot.proc.status().reason });
        this.checkDegraded();
        break;
      default: // backoff, stopping, stopped
        slot.role = 'dead';
    }
  }

  /**
   * Watches the instance's death lease: the kernel breaks it as the process starts to die, long before its exit
   * event when the process is large. Whichever of the two comes first promotes a standby (one claimPrimary CAS).
   */
  private watchDeath(slot: Slot): void {
    slot.unwatch?.abort();
    const entry = slot.entry;
    if (!entry?.leased || !this.config.watchLeases) return;
    const stop = new AbortController();
    slot.unwatch = stop;
    this.registry.waitForDeath(entry, { signal: stop.signal, ref: false }).then(
      () => {
        if (slot.entry !== entry || this.state !== 'running') return;
        const knownAt = performance.now();
        const wasPrimary = this.primaryId === slot.id;
        slot.role = 'dead';
        slot.entry = undefined;
        this.emit('instance-died', { id: slot.id, name: slot.name, pid: entry.pid, role: wasPrimary ? 'primary' : 'standby' });
        if (wasPrimary) this.promote(slot, 'exit', knownAt);
        this.checkDegraded();
      },
      () => undefined, // stopped watching: a new entry, or the group stopped
    );
  }

  private onExit(slot: Slot, status: ExitStatus, pid: number): void {
    const knownAt = performance.now();
    const wasPrimary = this.primaryId === slot.id;
    const role = slot.role;
    slot.role = 'dead';
    slot.entry = undefined;
    slot.unwatch?.abort();
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.emit('instance-exit', { id: slot.id, name: slot.name, pid, status, role });
    if (wasPrimary && this.state === 'running') this.promote(slot, 'exit', knownAt);
    this.checkDegraded();
  }

  /** Standbys that can take over now: running, registered, alive, not fenced; lowest id first. */
  private candidates(): Slot[] {
    return this.slots.filter(
      (s) =>
        s.id !== this.primaryId &&
        s.role === 'standby' &&
        !s.fenced &&
        s.proc.state === 'running' &&
        s.entry !== undefined &&
        this.entryAlive(s.entry),
    );
  }

  /** Makes the best candidate primary through claimPrimary (compare-and-swap on the epoch). */
  private promote(previous: Slot | undefined, reason: FailoverEvent['reason'], knownAt: number): void {
    if (previous && this.primaryId === previous.id) this.primaryId = undefined;
    if (!previous && this.lostPrimary) ({ slot: previous, reason, knownAt } = this.lostPrimary);
    for (const next of this.candidates()) {
      const epoch = this.guarded(() => {
        const claimed = this.registry.claimPrimary(this.serviceName, next.name, this.epoch);
        if (claimed !== undefined) return claimed;
        // Someone else wrote the record (an earlier host): claim over what is there now.
        this.epoch = this.registry.groupState(this.serviceName).epoch;
        return this.registry.claimPrimary(this.serviceName, next.name, this.epoch);
      });
      if (epoch === undefined) continue;
      this.epoch = epoch;
      this.primaryId = next.id;
      next.role = 'primary';
      next.epoch = epoch;
      if (previous) this.failedOverSinceCheck = true;
      const event: FailoverEvent = {
        previous: previous?.name,
        primary: next.name,
        epoch,
        detectedInMs: performance.now() - knownAt,
        reason: previous ? reason : 'elected',
      };
      this.lostPrimary = undefined;
      this.emit('primary', event);
      if (previous) this.emit('failover', event);
      else this.emit('elected', event);
      return;
    }
    if (previous) this.lostPrimary = { slot: previous, reason, knownAt };
    this.checkDegraded();
  }

  /** Alive by its lease first (broken the moment it starts to die), then by identity. */
  private entryAlive(entry: ServiceEntry): boolean {
    try {
      return this.registry.isAlive(entry);
    } catch {
      return isAlive(entry.pid, entry.startTime);
    }
  }

  /** Runs a registry operation from an event or timer: a failure is reported and retried later, never thrown. */
  private guarded<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.emit('registry-error', err);
      return undefined;
    }
  }

  private checkDegraded(): void {
    const degraded = this.state === 'running' && this.candidates().length === 0;
    if (degraded && !this.degraded) {
      this.emit('degraded', { primary: this.primary()?.name, alive: this.aliveCount() });
    }
    this.degraded = degraded;
  }

  /** Heartbeat staleness can only be seen by looking: check a few times per timeout. */
  private startWatchdog(timeoutMs: number): void {
    this.watchdog = setInterval(() => this.checkHeartbeats(timeoutMs), Math.max(5, timeoutMs / 4));
    this.watchdog.unref();
  }

  private checkHeartbeats(timeoutMs: number): void {
    if (this.state !== 'running') return;
    const now = Date.now();
    for (const slot of this.slots) {
      if (slot.role !== 'primary' && slot.role !== 'standby') continue;
      let entry: ServiceEntry | undefined;
      try {
        entry = this.registry.find(slot.name);
      } catch {
        return; // a stopped process holds the registry lock: look again on the next tick
      }
      if (!entry) continue;
      const lastBeat = (entry.heartbeatAt ?? entry.registeredAt).getTime();
      const stale = now - lastBeat > timeoutMs;
      if (!stale) {
        if (slot.fenced) {
          // It beats again: a standby like any other, and the primary if there is none.
          slot.fenced = false;
          if (this.primaryId === undefined) this.promote(undefined, 'elected', performance.now());
          this.checkDegraded();
        }
        continue;
      }
      if (slot.fenced) continue;
      slot.fenced = true;
      const wasPrimary = this.primaryId === slot.id;
      if (this.config.onHung === 'kill' && slot.proc.pid !== undefined) process.kill(slot.proc.pid, 'SIGKILL');
      if (wasPrimary) this.promote(slot, 'hung', performance.now() - (now - lastBeat - timeoutMs));
      if (wasPrimary) slot.role = 'standby';
      this.checkDegraded();
    }
  }

  /** A host that died leaves its instances running: stop those that still hold our names before spawning. */
  private async stopLeftovers(): Promise<void> {
    const leftovers = this.registry.findAll(`${this.serviceName}.`);
    await Promise.all(
      leftovers.map(async (entry) => {
        if (entry.pid === process.pid) return;
        try {
          process.kill(entry.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        const gone = watchExit(entry.pid, entry.startTime).then(() => true);
        const graceOver = new Promise<boolean>((r) => setTimeout(r, LEFTOVER_GRACE_MS, false).unref());
        if (!(await Promise.race([gone, graceOver]))) {
          try {
            process.kill(entry.pid, 'SIGKILL');
          } catch {
            /* gone meanwhile */
          }
          await watchExit(entry.pid, entry.startTime);
        }
        this.registry.unregister(entry.name);
      }),
    );
  }

  private view(s: Slot): ManagedInstance {
    return { id: s.id, name: s.name, role: s.role, pid: s.proc.pid, process: s.proc, entry: s.entry, epoch: s.epoch };
  }
}
