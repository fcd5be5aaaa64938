import type { FailoverView } from './model.js';

/** A death older than this does not explain a new primary (it was not a failover we saw). */
const DEATH_WINDOW_MS = 60_000;

/**
 * Turns what the dashboard sees of a domain over time (group records, entry deaths) into failovers. The
 * registry keeps only a group's epoch and primary, so when and how fast a failover happened is what the
 * dashboard observed: from the moment it knew the old primary was dead to the moment it saw the new one.
 */
export class FailoverTracker {
  private readonly groups = new Map<string, { epoch: number; primary: string | undefined; last: FailoverView | null }>();
  private readonly deaths = new Map<string, number>();

  /** The dashboard learned now (or at `at`) that entry `name` of `domain` is dead or gone; the first word counts. */
  noteDeath(domain: string, name: string, at = Date.now()): void {
    const key = `${domain}/${name}`;
    if (!this.deaths.has(key)) this.deaths.set(key, at);
  }

  /** Entry `name` is registered and alive again (a respawn): a later death is a new one. */
  noteAlive(domain: string, name: string): void {
    this.deaths.delete(`${domain}/${name}`);
  }

  /**
   * A group record as read now. Returns the failover (or election) it shows, if the record moved since the
   * last look; the first look at a group only records it.
   */
  observe(domain: string, group: string, epoch: number, primary: string | undefined, at = Date.now()): FailoverView | undefined {
    const key = `${domain}/${group}`;
    const seen = this.groups.get(key);
    if (!seen) {
      this.groups.set(key, { epoch, primary, last: null });
      return undefined;
    }
    if (epoch <= seen.epoch || primary === undefined) return undefined;
    const from = seen.primary !== undefined && seen.primary !== primary ? seen.primary : null;
    const died = from === null ? undefined : this.deaths.get(`${domain}/${from}`);
    const failover: FailoverView = {
      from,
      to: primary,
      epoch,
      at,
      durationMs: died !== undefined && at - died <= DEATH_WINDOW_MS ? Math.max(0, at - died) : null,
    };
    this.groups.set(key, { epoch, primary, last: failover });
    return failover;
  }

  lastFailover(domain: string, group: string): FailoverView | null {
    return this.groups.get(`${domain}/${group}`)?.last ?? null;
  }

  /** Forgets a domain the dashboard no longer follows. */
  forget(domain: string): void {
    for (const map of [this.groups, this.deaths]) for (const k of map.keys()) if (k.startsWith(`${domain}/`)) map.delete(k);
  }
}
