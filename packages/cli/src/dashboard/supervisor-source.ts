import { type FSWatcher, watch } from 'node:fs';
import { resolve } from 'node:path';
import { listRuns, runtimeDir } from '../runs.js';
import type { DashboardState } from './dashboard-state.js';
import type { ServiceView, StoreView } from './model.js';
import { cascadeOf, compactNames } from './cascade.js';
import { storeLabel } from '../log-select.js';
import { StoreWatch } from './store-watch.js';
import { UsageSampler } from '../daemon/usage-sampler.js';
import { restartNote } from '../restart-note.js';

/** The most services listed (over every store). */
const MAX_SERVICES = 2000;

/**
 * Supervisor services: the store given with --store, or else every `libipc run` of this user (its run
 * records, followed as runs start and end). Publishes 'services' and the history events on the time line.
 */
export class SupervisorSource {
  private readonly stores = new Map<string, StoreWatch>();
  // CPU and memory of the live services, sampled once a second while the page is served (as `libipc ps`).
  private readonly usage = new UsageSampler(() => this.livePids(), { startedAt: (pid) => this.startedAt.get(pid) });
  private readonly startedAt = new Map<number, number>();
  private runsWatcher: FSWatcher | undefined;
  private closed = false;

  constructor(
    private readonly state: DashboardState,
    private readonly opts: { store?: string; env: NodeJS.ProcessEnv; cwd: string },
  ) {}

  start(): void {
    if (this.opts.store !== undefined) {
      this.add(resolve(this.opts.cwd, this.opts.store));
    } else {
      const dir = runtimeDir(this.opts.env, false);
      try {
        this.runsWatcher = watch(dir, { persistent: false }, (_e, f) => {
          if (f && /^run-\d+\.json$/.test(String(f))) this.syncRuns();
        });
        this.runsWatcher.on('error', () => undefined);
      } catch {
        // No run ever started here: nothing to follow until the dashboard is started again.
      }
      this.syncRuns();
    }
    this.publish();
  }

  /** The store with this id, if the dashboard shows it. */
  store(id: string): StoreWatch | undefined {
    for (const s of this.stores.values()) if (s.id === id) return s;
    return undefined;
  }

  sample(): void {
    for (const s of this.stores.values()) s.sample();
    this.publish(); // CPU and memory move every second
  }

  private livePids(): number[] {
    const pids: number[] = [];
    for (const w of this.stores.values()) {
      for (const r of w.rows?.rows ?? []) {
        if (!r.alive || r.pid === null) continue;
        pids.push(r.pid);
        if (r.uptimeMs !== null) this.startedAt.set(r.pid, w.readAt - r.uptimeMs);
      }
    }
    return pids;
  }

  close(): void {
    this.closed = true;
    this.usage.stop();
    this.runsWatcher?.close();
    for (const s of this.stores.values()) s.close();
    this.stores.clear();
  }

  private add(path: string): void {
    if (this.stores.has(path) || this.closed) return;
    const w = new StoreWatch(path, (events) => {
      this.state.addEvents(events);
      this.publish();
    });
    this.stores.set(path, w);
    w.start();
  }

  /** Follows the stores of the live runs; a run that ended leaves the page. */
  private syncRuns(): void {
    if (this.closed) return;
    const live = new Set(listRuns(this.opts.env).filter((r) => r.alive).map((r) => r.store));
    for (const [path, w] of this.stores) {
      if (!live.has(path)) {
        w.close();
        this.stores.delete(path);
      }
    }
    for (const path of live) this.add(path);
    this.publish();
  }

  private publish(): void {
    const stores: StoreView[] = [];
    const services: ServiceView[] = [];
    const usage = this.usage.look(this.livePids());
    for (const w of this.stores.values()) {
      stores.push({ id: w.id, path: w.path, manager: w.rows?.manager ?? null, problem: w.problem });
      const rows = w.rows?.rows ?? [];
      const specs = w.rows?.specs ?? [];
      for (const r of rows) {
        if (services.length >= MAX_SERVICES) break;
        const base = `/api/stores/${w.id}/services/${encodeURIComponent(r.name)}`;
        const start = cascadeOf('start', r.name, specs, rows);
        services.push({
          key: `${w.id}/${r.name}`,
          storeId: w.id,
          storeLabel: storeLabel(w.path),
          shownState: r.shownState,
          orphaned: r.orphaned,
          note: r.note,
          cascade: {
            stop: compactNames(cascadeOf('stop', r.name, specs, rows).also),
            restart: compactNames(cascadeOf('restart', r.name, specs, rows).also),
            start: compactNames(start.also),
            startDependents: start.dependents,
          },
          name: r.name,
          service: r.service,
          state: r.state,
          desired: r.desired,
          pid: r.pid,
          alive: r.alive,
          restarts: r.restarts,
          // To the second: a read a moment later must not look like a change.
          startedAt: r.uptimeMs === null ? null : Math.round((w.readAt - r.uptimeMs) / 1000) * 1000,
          cpu: r.alive && r.pid !== null ? (usage.get(r.pid)?.cpu ?? null) : null,
          rssBytes: r.alive && r.pid !== null ? (usage.get(r.pid)?.rssBytes ?? null) : null,
          lastExit: r.lastExit,
          reason: r.reason,
          restartNote: r.lastRestart && (r.shownState === 'running' || r.shownState === 'starting') ? restartNote(r.lastRestart) : null,
          actions: { restart: `${base}/restart`, stop: `${base}/stop`, start: `${base}/start` },
        });
      }
    }
    this.state.set('services', { stores, services });
  }
}
