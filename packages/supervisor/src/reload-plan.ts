import type { ServiceState } from './states.js';

/**
 * The decisions of a zero-downtime reload, pure (no I/O, no timers): which instances a reload replaces, how
 * many at once, which one next, and whether a replacement that got ready is swapped in. reload.ts carries them
 * out. Each replacement is started and made ready before the instance it replaces is stopped, so at every
 * moment the service has at least its N instances ready.
 */

/** What a reload reads of an instance when it begins. */
export interface ReloadUnitView {
  readonly name: string;
  readonly state: ServiceState;
  readonly desired: 'running' | 'stopped';
  readonly stopping: boolean;
}

export type ReloadScope =
  /** Nothing of the service runs or should: a reload is a start. */
  | { mode: 'start' }
  /** Replace these instances, one batch at a time; leave the others (why). */
  | { mode: 'replace'; replace: string[]; skipped: Array<{ name: string; reason: string }> };

export function reloadScope(units: readonly ReloadUnitView[]): ReloadScope {
  if (units.every((u) => u.desired === 'stopped' && (u.state === 'stopped' || u.state === 'exited' || u.state === 'failed'))) return { mode: 'start' };
  const replace: string[] = [];
  const skipped: Array<{ name: string; reason: string }> = [];
  for (const u of units) {
    if (u.state === 'running' && u.desired === 'running' && !u.stopping) replace.push(u.name);
    else skipped.push({ name: u.name, reason: skipReason(u) });
  }
  return { mode: 'replace', replace, skipped };
}

function skipReason(u: ReloadUnitView): string {
  if (u.desired === 'stopped' || u.stopping || u.state === 'stopping') return `${u.state}: it is being stopped`;
  if (u.state === 'starting' || u.state === 'backoff') return `${u.state}: its next process starts from the current spec anyway`;
  return `${u.state}: not running; start it`;
}

/**
 * How many instances are replaced at once: N − minAvailable (minAvailable defaults to N − 1: one at a time),
 * at least 1 and at most N. The old instances keep serving until their replacements are ready, so the batch
 * only trades the extra processes started at once for speed.
 */
export function reloadBatch(n: number, minAvailable: number | undefined): number {
  if (n <= 0) return 1;
  const keep = minAvailable ?? n - 1;
  return Math.min(n, Math.max(1, n - keep));
}

/**
 * Where one instance is in the reload: waiting; its replacement starting and getting ready; swapped in and its
 * old process stopping; done; its replacement failed (or the instance was stopped meanwhile).
 */
export type SlotPhase = 'pending' | 'replacing' | 'stopping-old' | 'done' | 'failed';

export type ReloadStep =
  /** Start the replacements of these instances now. */
  | { kind: 'replace'; names: string[] }
  /** Replacements or old stops are in flight: decide again when one settles. */
  | { kind: 'wait' }
  /** Every instance is replaced. */
  | { kind: 'done' }
  /** A replacement failed and nothing is in flight any more: stop here, the rest keep their old processes. */
  | { kind: 'abort'; failed: string[] };

/**
 * The next step, from every instance's phase (in instance order) and the batch size. An old process counts
 * against the batch until it is gone: never more than N + batch processes at once. After a failure no new
 * replacement starts; the reload ends once what is in flight settled.
 */
export function nextReloadStep(slots: ReadonlyArray<{ name: string; phase: SlotPhase }>, batch: number): ReloadStep {
  const inFlight = slots.filter((s) => s.phase === 'replacing' || s.phase === 'stopping-old').length;
  const failed = slots.filter((s) => s.phase === 'failed').map((s) => s.name);
  if (failed.length > 0) return inFlight > 0 ? { kind: 'wait' } : { kind: 'abort', failed };
  const pending = slots.filter((s) => s.phase === 'pending');
  if (pending.length === 0) return inFlight > 0 ? { kind: 'wait' } : { kind: 'done' };
  const free = batch - inFlight;
  if (free <= 0) return { kind: 'wait' };
  return { kind: 'replace', names: pending.slice(0, free).map((s) => s.name) };
}

/** What a reload reads of an instance once its replacement is ready. */
export interface SwapView {
  readonly state: ServiceState;
  readonly desired: 'running' | 'stopped';
  readonly stopping: boolean;
  readonly removing: boolean;
  readonly generation: number;
  /** The manager shuts down. */
  readonly closing: boolean;
}

export type SwapVerdict =
  /** Swap the replacement in and stop the old process. */
  | 'swap'
  /** The instance got a new process meanwhile (a crash, restart()): it runs the current spec; drop the replacement. */
  | 'restarted'
  /** The instance is being stopped or removed, or it is not running: drop the replacement and end the reload. */
  | 'overtaken';

export function swapVerdict(now: SwapView, generationAtStart: number): SwapVerdict {
  if (now.closing || now.removing || now.desired !== 'running' || now.stopping) return 'overtaken';
  if (now.generation !== generationAtStart) return now.state === 'running' ? 'restarted' : 'overtaken';
  return now.state === 'running' ? 'swap' : 'overtaken';
}
