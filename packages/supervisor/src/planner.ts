import { DEFAULT_RESTART_POLICY, type ExitStatus, type RestartPolicy } from '@libipc/process';
import { IllegalStateError } from '@libipc/shm';
import { type ServiceState, hasProcess } from './states.js';
import type { RestartCause, RestartTrigger, Waiter } from './unit.js';

/**
 * The manager's decisions, pure: from the desired and observed state of every unit and the dependency graph,
 * what to do next. No I/O, no timers; the control loop carries the actions out (see control.ts).
 *
 * The rule: a service may run only while everything it depends on runs and is ready, and may be stopped
 * only once nothing that depends on it runs.
 */

/** A start or restart that a later stop overtook (or the reverse). */
export class CancelledError extends IllegalStateError {}

/** What the planner reads of a unit (a Unit is one). */
export interface UnitView {
  readonly name: string;
  readonly service: string;
  readonly state: ServiceState;
  readonly desired: 'running' | 'stopped';
  /** A start or stop of ours is in flight. */
  readonly starting: boolean;
  readonly stopping: boolean;
  /** restart() asked: stop (dependents first), then start again. */
  readonly bounce: boolean;
  readonly restartCause: RestartCause | undefined;
  /** A trigger (maxMemory, cronRestart, watch) asked for the restart: its reason is the stop's. */
  readonly restartTrigger?: { trigger: RestartTrigger; reason: string } | undefined;
  readonly reason: string | undefined;
  readonly generation: number;
}

/** What the planner reads of the rest: every unit by service, the dependency graph, whether the manager shuts down. */
export interface World {
  unitsOf(service: string): readonly UnitView[];
  dependenciesOf(service: string): ReadonlySet<string>;
  dependentsOf(service: string): ReadonlySet<string>;
  /** `services` and everything they depend on, transitively. */
  dependencyClosure(services: Iterable<string>): Set<string>;
  isShuttingDown(): boolean;
}

/** The next thing to do with a unit. */
export type Action =
  /** Spawn it (its dependencies are healthy). */
  | { kind: 'start' }
  /** Stop its process; `cause` is why it will be started again (if it should run), `note` what the restart follows. */
  | { kind: 'stop'; reason: string; cause?: RestartCause; note?: string }
  /** Drop the pending restart of a crashed unit. */
  | { kind: 'cancel-backoff'; reason: string }
  /** failed/exited → stopped: it was asked to stop. */
  | { kind: 'clear'; reason: string }
  /** Hold it back (a dependency is not healthy): only its reason changes. */
  | { kind: 'wait'; reason: string };

/** Decides one unit after another in one pass over the world (healthiness is computed once per pass). */
export function planner(world: World): (u: UnitView) => Action | undefined {
  const memo = new Map<string, boolean>();
  const healthy = (service: string): boolean => {
    let h = memo.get(service);
    if (h !== undefined) return h;
    memo.set(service, false); // a cycle cannot exist, but never recurse forever
    h =
      world.unitsOf(service).every((u) => u.state === 'running' && u.desired === 'running' && !u.bounce && !u.stopping) &&
      [...world.dependenciesOf(service)].every(healthy);
    memo.set(service, h);
    return h;
  };
  return (u) => decide(u, world, healthy);
}

/** Every unit's next action on a world that stays as it is (for tests and tools: the manager acts between units). */
export function plan(world: World, units: Iterable<UnitView>): Array<[string, Action]> {
  const next = planner(world);
  const out: Array<[string, Action]> = [];
  for (const u of units) {
    const a = next(u);
    if (a) out.push([u.name, a]);
  }
  return out;
}

function decide(u: UnitView, world: World, healthy: (service: string) => boolean): Action | undefined {
  const blocker = [...world.dependenciesOf(u.service)].sort().find((d) => !healthy(d));
  if (u.desired === 'running') {
    switch (u.state) {
      case 'stopped': {
        if (u.starting || u.stopping) return undefined;
        if (blocker === undefined) return { kind: 'start' };
        const why = waitingReason(world, blocker);
        return u.reason === why ? undefined : { kind: 'wait', reason: why };
      }
      case 'backoff':
        return blocker !== undefined && !u.stopping ? { kind: 'cancel-backoff', reason: waitingReason(world, blocker) } : undefined;
      case 'starting':
      case 'running':
        if ((blocker === undefined && !u.bounce) || u.stopping || hasLiveDependents(world, u)) return undefined;
        if (u.bounce) {
          const why = u.restartTrigger?.reason ?? 'restart()';
          return { kind: 'stop', reason: why, cause: 'manual', note: why };
        }
        return {
          kind: 'stop',
          reason: waitingReason(world, blocker!),
          cause: bounceUpstream(world, u) ? 'manual' : 'crash',
          note: `${blocker} went down`,
        };
      default: // stopping, failed, exited: wait / stay until asked
        return undefined;
    }
  }
  switch (u.state) {
    case 'failed':
    case 'exited':
      return !u.starting && !u.stopping ? { kind: 'clear', reason: 'stop()' } : undefined;
    case 'backoff':
      return !u.stopping ? { kind: 'cancel-backoff', reason: 'stop()' } : undefined;
    case 'starting':
    case 'running':
      return !u.stopping && !hasLiveDependents(world, u) ? { kind: 'stop', reason: world.isShuttingDown() ? 'shutdown()' : 'stop()' } : undefined;
    default:
      return undefined;
  }
}

/** Whether something that depends on `u` still has a process (or a start or stop of one in flight). */
function hasLiveDependents(world: World, u: UnitView): boolean {
  for (const d of world.dependentsOf(u.service)) {
    for (const x of world.unitsOf(d)) if (hasProcess(x.state) || x.starting || x.stopping) return true;
  }
  return false;
}

/** Whether a dependency (transitively) is down because of a restart() rather than a crash. */
function bounceUpstream(world: World, u: UnitView): boolean {
  for (const s of world.dependencyClosure([u.service])) {
    if (s === u.service) continue;
    for (const d of world.unitsOf(s)) if (d.bounce || d.restartCause === 'manual') return true;
  }
  return false;
}

/** "waiting for a (backoff)", "waiting for a, which failed: …": the reason of a service held back by a dependency. */
export function waitingReason(world: World, blocker: string): string {
  const units = world.unitsOf(blocker);
  const failed = units.find((d) => d.state === 'failed' || d.state === 'exited');
  if (failed) return `waiting for ${blocker}, which ${failed.state}: ${failed.reason ?? 'no reason recorded'}`;
  const states = new Set(units.map((d) => (d.desired === 'stopped' ? 'stopped' : d.bounce ? 'restarting' : d.state)));
  // Healthy itself, but held back by its own dependencies.
  return states.size === 1 && states.has('running') ? `waiting for ${blocker} (its dependencies are not running)` : `waiting for ${blocker} (${[...states].join(', ')})`;
}

/** Whether a waiter of `u` is answered now: true (resolve), an Error (reject) or undefined (keep waiting). */
export function verdict(world: World, u: UnitView, w: Pick<Waiter, 'kind' | 'afterGeneration'>): true | Error | undefined {
  if (w.kind === 'stopped') {
    if (u.desired !== 'stopped') return new CancelledError(`stop of ${u.name} was overtaken by a later start()`);
    return u.state === 'stopped' && !u.stopping && !u.starting ? true : undefined;
  }
  if (u.desired !== 'running') return new CancelledError(`start of ${u.name} was overtaken by a later stop()`);
  if (u.state === 'running' && !u.bounce && (w.afterGeneration === undefined || u.generation > w.afterGeneration)) return true;
  // While our start is in flight, it reports its own error (ERR_LIBIPC_SPAWN, …) first.
  if ((u.state === 'failed' || u.state === 'exited') && !u.starting) return new IllegalStateError(`${u.name} ${u.state}: ${u.reason ?? 'no reason recorded'}`);
  const doomed = terminalDependency(world, u);
  if (doomed) return new IllegalStateError(`${u.name} cannot start: it depends on ${doomed.name}, which ${doomed.state} (${doomed.reason ?? 'no reason recorded'})`);
  return undefined;
}

/** A unit that `u` depends on (transitively) which will not come back by itself: failed or exited. */
function terminalDependency(world: World, u: UnitView): UnitView | undefined {
  for (const s of world.dependencyClosure([u.service])) {
    if (s === u.service) continue;
    for (const d of world.unitsOf(s)) if (d.state === 'failed' || d.state === 'exited') return d;
  }
  return undefined;
}

/** Whether crashes used up the unit's restart contract (restartLimit). */
export function limitReached(restartLimit: number | undefined, contractRestarts: number): boolean {
  return restartLimit !== undefined && contractRestarts >= restartLimit;
}

/** What follows the exit of an adopted process (not our child, so no ManagedProcess applies the policy). */
export interface ExitDecision {
  to: 'exited' | 'failed' | 'backoff';
  reason: string;
  /** For 'backoff': the delay before the restart. */
  delayMs?: number;
}

/** The spec's restart policy and restart contract applied to an adopted process's exit, as a ManagedProcess would. */
export function afterAdoptedExit(policy: RestartPolicy, st: ExitStatus, restartLimit: number | undefined, contractRestarts: number): ExitDecision {
  const codes = policy.stopExitCodes ?? [];
  const onPurpose = st.exited && st.exitCode !== null && codes.includes(st.exitCode);
  const clean = st.exited && st.exitCode !== null && (st.exitCode === 0 || onPurpose);
  const what = st.reason === 'signaled' ? `signal ${st.signal}` : st.exitCode !== null ? `exit code ${st.exitCode}` : 'an unknown status (adopted)';
  const restart = policy.policy === 'always' ? !onPurpose : policy.policy === 'on-failure' ? !clean : false;
  if (!restart) return { to: clean ? 'exited' : 'failed', reason: `exited with ${what}; restart policy '${policy.policy}' does not restart it` };
  if (limitReached(restartLimit, contractRestarts)) return { to: 'failed', reason: `exited with ${what}; restart limit ${restartLimit} reached` };
  const delayMs = policy.backoff?.initialMs ?? DEFAULT_RESTART_POLICY.backoff!.initialMs;
  return { to: 'backoff', reason: `exited with ${what}; restarting in ${delayMs} ms`, delayMs };
}
