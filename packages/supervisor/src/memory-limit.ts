/**
 * The maxMemory decision, pure: from a unit's recent RSS samples, whether it stayed above its limit for
 * longer than the grace (then it is restarted, trigger 'memory'). The sampling timer lives in triggers.ts.
 */

/** How often the manager samples RSS while some running service has maxMemory. */
export const MEMORY_SAMPLE_MS = 1000;

/** One RSS reading of one process; `at` in ms on a monotonic clock (performance.now()). */
export interface MemorySample {
  at: number;
  rss: number;
}

export type MemoryVerdict =
  | { action: 'ok' }
  /** Above the limit, for `overForMs` so far: not yet longer than the grace. */
  | { action: 'over'; overForMs: number }
  | { action: 'restart'; reason: string };

/** The samples a verdict still needs: the trailing run above the limit (one below it ends a run). */
export function pruneSamples(samples: readonly MemorySample[], limit: number): MemorySample[] {
  let i = samples.length;
  while (i > 0 && samples[i - 1]!.rss > limit) i--;
  return samples.slice(i);
}

/** Restart once every sample of the last `graceMs` (and at least one) was above `limit`; samples oldest first. */
export function memoryVerdict(samples: readonly MemorySample[], limit: number, graceMs: number, now: number): MemoryVerdict {
  const run = pruneSamples(samples, limit);
  const last = run[run.length - 1];
  if (!last) return { action: 'ok' };
  const overForMs = Math.max(0, now - run[0]!.at);
  if (overForMs < graceMs) return { action: 'over', overForMs };
  return { action: 'restart', reason: `memory: RSS ${mib(last.rss)} above maxMemory ${mib(limit)} for ${seconds(overForMs)}` };
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}
