import { sampleUsage } from '@libipc/process';
import { MAX_TIMER_MS } from '@libipc/shm';
import type { FSWatcher } from 'chokidar';
import type { Announcer } from './announcer.js';
import type { Control } from './control.js';
import { CancelledError } from './planner.js';
import { nextCronFire } from './cron-schedule.js';
import { MEMORY_SAMPLE_MS, type MemorySample, memoryVerdict, pruneSamples } from './memory-limit.js';
import type { Registry } from './registry.js';
import { type TriggerKind, triggerActive, triggerTargets } from './trigger-targets.js';
import type { Unit } from './unit.js';
import { type PendingChanges, addChange, debounceDelay, describeChanges, ignoreMatcher, watchError, watchIgnores } from './watch-rules.js';

interface CronEntry {
  expr: string;
  timer: NodeJS.Timeout | undefined;
}

interface WatchEntry {
  key: string;
  roots: string[];
  watcher: FSWatcher | undefined;
  pending: PendingChanges | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The watcher failed (e.g. out of inotify watches): not made again until the spec changes. */
  failed: boolean;
}

/**
 * The restart triggers' timers and watchers: one RSS sampler for the manager (while some running service has
 * maxMemory), a timer per service with cronRestart, a watcher per service with watch. Each exists only while
 * its service is wanted running; each restart goes through control.requestRestart with its trigger. The
 * decisions are in memory-limit.ts, cron-schedule.ts, watch-rules.ts and trigger-targets.ts.
 */
export class Triggers {
  private memoryTimer: NodeJS.Timeout | undefined;
  private readonly samples = new Map<Unit, { pid: number; samples: MemorySample[] }>();
  private readonly crons = new Map<string, CronEntry>();
  private readonly watches = new Map<string, WatchEntry>();
  private closed = false;

  constructor(
    private readonly reg: Registry,
    private readonly control: Control,
    private readonly out: Announcer,
    /** Files the manager itself writes (store, history): never a reason to restart. */
    private readonly managerFiles: readonly string[],
  ) {}

  /** Makes the timers and watchers match what is wanted running now (called after every pass of the control loop). */
  sync(): void {
    if (this.closed) return;
    this.syncMemory();
    for (const [service, e] of this.crons) {
      const units = this.reg.unitsOf.get(service);
      const expr = units?.[0]?.spec.cronRestart;
      if (!units || expr !== e.expr || !triggerActive(units)) this.dropCron(service);
    }
    for (const [service, e] of this.watches) {
      const units = this.reg.unitsOf.get(service);
      if (!units || watchKey(units[0]) !== e.key || !triggerActive(units)) this.dropWatch(service);
    }
    for (const [service, units] of this.reg.unitsOf) {
      const spec = units[0]?.spec;
      if (!spec || !triggerActive(units)) continue;
      if (spec.cronRestart !== undefined && !this.crons.has(service)) this.armCron(service, spec.cronRestart, new Date());
      if (spec.watch !== undefined && !this.watches.has(service)) this.startWatch(service, units[0]!);
    }
  }

  /** Stops every timer and watcher (manager shutdown); resolves once the watchers are closed. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.memoryTimer);
    this.memoryTimer = undefined;
    this.samples.clear();
    for (const s of [...this.crons.keys()]) this.dropCron(s);
    const closing = [...this.watches.keys()].map((s) => this.dropWatch(s));
    await Promise.all(closing);
  }

  private restart(units: Unit[], kind: TriggerKind, reason: string): void {
    if (units.length === 0 || this.closed) return;
    this.control.requestRestart(units, { trigger: kind, reason }).catch((err: unknown) => {
      // Overtaken by a stop, or the new process failed: its state and history say so already.
      if (!(err instanceof CancelledError)) this.out.warn(err);
    });
  }

  // ---- maxMemory ----

  private syncMemory(): void {
    let needed = false;
    for (const u of this.reg.units.values()) if (u.spec.maxMemory !== undefined && triggerTargets([u], 'memory').length > 0) needed = true;
    if (needed && !this.memoryTimer) {
      this.memoryTimer = setInterval(() => this.sampleMemory(), MEMORY_SAMPLE_MS);
      this.memoryTimer.unref();
    } else if (!needed && this.memoryTimer) {
      clearInterval(this.memoryTimer);
      this.memoryTimer = undefined;
      this.samples.clear();
    }
  }

  private sampleMemory(): void {
    for (const u of [...this.samples.keys()]) if (this.reg.units.get(u.name) !== u) this.samples.delete(u);
    for (const u of this.reg.units.values()) {
      const limit = u.spec.maxMemory;
      if (limit === undefined || u.pid === undefined || triggerTargets([u], 'memory').length === 0) {
        this.samples.delete(u);
        continue;
      }
      // The service's own process (as PM2 does): its descendants would cost a walk of /proc every second.
      const s = sampleUsage(u.pid);
      if (!s) {
        this.samples.delete(u);
        continue;
      }
      let e = this.samples.get(u);
      if (!e || e.pid !== u.pid) this.samples.set(u, (e = { pid: u.pid, samples: [] }));
      e.samples = pruneSamples([...e.samples, { at: s.at, rss: s.rssBytes }], limit);
      const v = memoryVerdict(e.samples, limit, u.spec.memoryGraceMs, s.at);
      if (v.action === 'restart') {
        this.samples.delete(u);
        this.restart([u], 'memory', v.reason);
      }
    }
  }

  // ---- cronRestart ----

  private armCron(service: string, expr: string, from: Date): void {
    const e = this.crons.get(service) ?? { expr, timer: undefined };
    this.crons.set(service, e);
    const next = nextCronFire(expr, from);
    if (!next) return; // never fires again
    const delay = Math.min(Math.max(0, next.getTime() - Date.now()), MAX_TIMER_MS);
    e.timer = setTimeout(() => {
      if (this.crons.get(service) !== e) return;
      // Woken early (a capped delay, clock steps): wait on for the same fire.
      if (Date.now() < next.getTime()) return this.armCron(service, expr, from);
      this.restart(triggerTargets(this.reg.unitsOf.get(service) ?? [], 'cron'), 'cron', `cron: '${expr}' fired at ${next.toISOString()}`);
      // Fires missed while the loop was blocked are skipped, not run back to back.
      this.armCron(service, expr, new Date(Math.max(Date.now(), next.getTime())));
    }, delay);
    e.timer.unref();
  }

  private dropCron(service: string): void {
    clearTimeout(this.crons.get(service)?.timer);
    this.crons.delete(service);
  }

  // ---- watch ----

  private startWatch(service: string, u: Unit): void {
    const w = u.spec.watch!;
    const e: WatchEntry = { key: watchKey(u), roots: w.paths, watcher: undefined, pending: undefined, timer: undefined, failed: false };
    this.watches.set(service, e);
    const logDir = typeof u.spec.logs === 'object' ? u.spec.logs.dir : undefined;
    const ignored = ignoreMatcher(w.paths, watchIgnores(w.ignore, logDir, this.managerFiles));
    // Loaded on first use: a manager without watches never opens chokidar's files.
    import('chokidar').then(
      ({ watch }) => {
        if (this.watches.get(service) !== e || e.failed) return;
        try {
          // persistent: false — watching alone does not keep the manager's process alive.
          e.watcher = watch(w.paths, { ignored, ignoreInitial: true, persistent: false });
        } catch (err) {
          this.watchFailed(service, e, err);
          return;
        }
        this.onWatcher(service, e, e.watcher, ignored, w.paths, w.debounceMs);
      },
      (err: unknown) => this.watchFailed(service, e, err),
    );
  }

  private onWatcher(service: string, e: WatchEntry, watcher: FSWatcher, ignored: (p: string) => boolean, paths: string[], debounceMs: number): void {
    watcher.on('all', (_event, path) => {
      if (this.watches.get(service) !== e || ignored(path)) return;
      e.pending = addChange(e.pending, path, performance.now());
      this.armDebounce(service, e, debounceMs);
    });
    watcher.on('error', (err) => this.watchFailed(service, e, err));
    watcher.on('ready', () => {
      if (this.watches.get(service) === e && !e.failed) this.out.emit('watching', { service, paths: [...paths] });
    });
  }

  private armDebounce(service: string, e: WatchEntry, debounceMs: number): void {
    clearTimeout(e.timer);
    const delay = debounceDelay(e.pending!, debounceMs, performance.now());
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (this.watches.get(service) !== e || !e.pending) return;
      if (debounceDelay(e.pending, debounceMs, performance.now()) > 0) return this.armDebounce(service, e, debounceMs);
      const reason = describeChanges(e.pending, e.roots);
      e.pending = undefined;
      this.restart(triggerTargets(this.reg.unitsOf.get(service) ?? [], 'watch'), 'watch', reason);
    }, Math.max(0, delay));
    e.timer.unref();
  }

  /** The service keeps running; its watch stops (until its spec changes) and a coded 'warning' says why. */
  private watchFailed(service: string, e: WatchEntry, err: unknown): void {
    if (this.watches.get(service) !== e || e.failed) return;
    e.failed = true;
    clearTimeout(e.timer);
    e.timer = undefined;
    e.pending = undefined;
    void e.watcher?.close().catch(() => {});
    e.watcher = undefined;
    this.out.warn(watchError(err, service));
  }

  private dropWatch(service: string): Promise<void> {
    const e = this.watches.get(service);
    this.watches.delete(service);
    if (!e) return Promise.resolve();
    clearTimeout(e.timer);
    return e.watcher ? e.watcher.close().catch(() => {}) : Promise.resolve();
  }
}

/** What makes a service's watcher: made anew when it changes. */
function watchKey(u: Unit | undefined): string {
  const w = u?.spec.watch;
  const logs = u?.spec.logs;
  return w ? JSON.stringify([w, typeof logs === 'object' ? logs.dir : null]) : '';
}
