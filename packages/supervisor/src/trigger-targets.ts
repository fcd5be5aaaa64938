import type { ServiceState } from './states.js';

/** Which units a restart trigger acts on, pure (the timers and watchers in triggers.ts ask). */

export type TriggerKind = 'memory' | 'cron' | 'watch';

export interface TargetView {
  readonly name: string;
  readonly state: ServiceState;
  readonly desired: 'running' | 'stopped';
  readonly bounce: boolean;
  readonly stopping: boolean;
}

/**
 * The units a trigger restarts now. Never one asked to stop or already restarting. cron: running ones;
 * memory: any with a process that is not being stopped; watch: also failed or exited ones (the change may be the fix).
 */
export function triggerTargets<U extends TargetView>(units: readonly U[], kind: TriggerKind): U[] {
  return units.filter((u) => {
    if (u.desired !== 'running' || u.bounce || u.stopping) return false;
    switch (kind) {
      case 'cron':
        return u.state === 'running';
      case 'memory':
        return u.state === 'running' || u.state === 'starting';
      case 'watch':
        return u.state === 'running' || u.state === 'starting' || u.state === 'failed' || u.state === 'exited';
    }
  });
}

/** Whether a service's cron timer or watcher should exist: while any of its units is wanted running. */
export function triggerActive(units: readonly TargetView[]): boolean {
  return units.some((u) => u.desired === 'running');
}
