import { type RegistryChange, type RegistrySnapshot, ServiceRegistry, inspectRegistry } from '@libipc/registry';
import { LibipcError, SharedMemory } from '@libipc/shm';
import { registryDomains } from '../domains.js';
import { startedAtMs } from '../proc.js';
import type { DashboardState } from './dashboard-state.js';
import { FailoverTracker } from './failover-tracker.js';
import type { DomainView, EntryView, GroupView, TimelineEvent } from './model.js';
import type { ShmWatch } from './shm-watch.js';

const DOMAIN_FILE = /^libipc\.registry\.([A-Za-z0-9._-]{1,63})$/;
/**
 * A claimPrimary writes the group record without a change event, so after a death the record is read again a
 * few times: the new primary shows within milliseconds of its claim. Bounded: it stops after 3 s.
 */
const AFTER_DEATH_MS = [1, 3, 6, 10, 20, 40, 80, 150, 300, 600, 1200, 3000];

/**
 * Registry domains: each one joined and watched (registry `watch`: registrations, unregistrations and deaths as
 * they happen, deaths the moment a death lease breaks), read with `inspectRegistry` after each change, and new
 * domains picked up from /dev/shm. Publishes the 'registry' section and registry/group events on the time line.
 */
export class RegistrySource {
  private readonly registries = new Map<string, ServiceRegistry>();
  private readonly watches = new Map<string, AbortController>();
  private readonly snapshots = new Map<string, RegistrySnapshot>();
  private readonly problems = new Map<string, string>();
  private readonly tasks: Array<Promise<void>> = [];
  private readonly stop = new AbortController();
  private readonly tracker = new FailoverTracker();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly dirty = new Set<string>();
  private flushing = false;

  constructor(
    private readonly state: DashboardState,
    private readonly domain: string | undefined,
  ) {}

  start(shm: ShmWatch): void {
    if (this.domain !== undefined) {
      this.follow(this.domain); // created if it does not exist yet, as `libipc watch --domain` does
    } else {
      // Found domains are read first, and joined only when someone uses them (see idle()).
      shm.on('name', (file: string) => {
        const m = DOMAIN_FILE.exec(file);
        if (m) this.refresh(m[1]!);
      });
      for (const d of registryDomains()) this.dirty.add(d);
      this.flush();
    }
    this.publish();
  }

  /** Reads every domain again: heartbeats move without change events. */
  sample(): void {
    for (const d of [...this.registries.keys(), ...this.snapshots.keys()]) this.dirty.add(d);
    this.flush();
  }

  async close(): Promise<void> {
    this.stop.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled(this.tasks);
    for (const r of this.registries.values()) r.close();
    this.registries.clear();
  }

  private follow(domain: string): void {
    if (this.registries.has(domain) || this.stop.signal.aborted) return;
    // A domain found in /dev/shm is joined only while it exists: joining one that just went would create it.
    if (this.domain === undefined && !SharedMemory.exists(domain, { kind: 'registry' })) return;
    let registry: ServiceRegistry;
    let changes: AsyncIterableIterator<RegistryChange>;
    const watch = new AbortController();
    try {
      registry = new ServiceRegistry(domain);
      changes = registry.watch({ signal: AbortSignal.any([this.stop.signal, watch.signal]) });
    } catch (err) {
      this.problems.set(domain, message(err));
      this.publish();
      return;
    }
    this.problems.delete(domain);
    this.registries.set(domain, registry);
    this.watches.set(domain, watch);
    this.refresh(domain);
    this.tasks.push(
      (async () => {
        for await (const change of changes) this.onChange(domain, change);
      })().catch((err: unknown) => {
        if (this.stop.signal.aborted || watch.signal.aborted) return;
        this.problems.set(domain, `stopped watching: ${message(err)}`);
        this.publish();
      }),
    );
  }

  private onChange(domain: string, change: RegistryChange): void {
    const e = change.entry;
    const at = Date.now();
    if (change.type === 'registered') this.tracker.noteAlive(domain, e.name);
    else this.tracker.noteDeath(domain, e.name, at);
    this.state.addEvents([{ at, source: 'registry', type: change.type, name: e.name, detail: `${domain}: pid ${e.pid}` }]);
    this.refresh(domain);
    if (change.type !== 'registered') this.watchGroupsAfterDeath(domain);
  }

  private watchGroupsAfterDeath(domain: string): void {
    for (const ms of AFTER_DEATH_MS) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (this.snapshots.has(domain)) this.refresh(domain);
      }, ms);
      t.unref();
      this.timers.add(t);
    }
  }

  private refresh(domain: string): void {
    this.dirty.add(domain);
    this.flush();
  }

  /** Reads the dirty domains now (synchronously: a read is a lock-free copy) and publishes once. */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      const events: Array<Omit<TimelineEvent, 'id'>> = [];
      for (const domain of this.dirty) {
        let snap: RegistrySnapshot;
        try {
          snap = inspectRegistry(domain);
        } catch (err) {
          if (this.domain === undefined && err instanceof LibipcError && err.code === 'ERR_LIBIPC_NOT_FOUND') {
            this.release(domain); // removed by its last user
            this.snapshots.delete(domain);
            this.problems.delete(domain);
          } else {
            this.problems.set(domain, message(err));
          }
          continue;
        }
        this.problems.delete(domain);
        if (this.idle(snap)) this.release(domain);
        else if (!this.registries.has(domain)) this.follow(domain); // in use again
        this.snapshots.set(domain, snap);
        const at = Date.now();
        for (const e of snap.entries) if (!e.alive) this.tracker.noteDeath(domain, e.name, at);
        for (const g of snap.groups) {
          const f = this.tracker.observe(domain, g.name, g.epoch, g.primary, at);
          if (!f) continue;
          const how = f.from === null ? `${f.to} elected` : `${f.from} → ${f.to}${f.durationMs === null ? '' : ` in ${f.durationMs} ms`}`;
          events.push({ at, source: 'group', type: f.from === null ? 'elected' : 'failover', name: g.name, detail: `${domain}: ${how} (epoch ${f.epoch})` });
        }
      }
      this.dirty.clear();
      this.state.addEvents(events);
      this.publish();
    } finally {
      this.flushing = false;
    }
  }

  /**
   * Found in /dev/shm, and nobody else uses it any more: let it go, so that its last user's close can remove it
   * (a dashboard must not keep dead domains alive). Still shown (read without joining) while it exists, and
   * joined again when someone uses it.
   */
  private idle(snap: RegistrySnapshot): boolean {
    if (this.domain !== undefined) return false;
    return !snap.entries.some((e) => e.alive) && !snap.users.some((u) => u.alive && u.pid !== process.pid);
  }

  private release(domain: string): void {
    this.watches.get(domain)?.abort();
    this.watches.delete(domain);
    this.registries.get(domain)?.close();
    this.registries.delete(domain);
  }

  private publish(): void {
    const domains: DomainView[] = [];
    const entries: EntryView[] = [];
    const groups: GroupView[] = [];
    const names = [...new Set([...this.registries.keys(), ...this.snapshots.keys(), ...this.problems.keys()])].sort();
    for (const domain of names) {
      const snap = this.snapshots.get(domain);
      domains.push({ domain, capacity: snap?.capacity ?? null, problem: this.problems.get(domain) ?? null });
      if (!snap) continue;
      const byName = new Map(snap.entries.map((e) => [e.name, e]));
      for (const e of snap.entries) {
        entries.push({
          domain,
          name: e.name,
          pid: e.pid,
          alive: e.alive,
          leased: e.leased === true,
          startedAt: e.alive ? startedAtMs(e.startTime) : null,
          registeredAt: e.registeredAt.getTime(),
          heartbeatAt: e.heartbeatAt?.getTime() ?? null,
          controlChannel: e.controlChannel,
          replyChannel: e.replyChannel,
        });
      }
      for (const g of snap.groups) {
        const p = g.primary === undefined ? undefined : byName.get(g.primary);
        groups.push({
          domain,
          name: g.name,
          epoch: g.epoch,
          primary: g.primary ?? null,
          primaryPid: p?.pid ?? null,
          primaryAlive: p?.alive ?? false,
          lastFailover: this.tracker.lastFailover(domain, g.name),
        });
      }
    }
    this.state.set('registry', { domains, entries, groups });
  }
}

function message(err: unknown): string {
  return err instanceof LibipcError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
}
