import { InvalidArgumentError } from '@libipc/shm';
import type { BackoffSpec } from './backoff.js';
import type { ExitStatus } from './exit-status.js';

/** When and how fast a managed process is restarted: plain data. */
export interface RestartPolicy {
  /** 'always': after any exit; 'on-failure': after a non-zero exit or a signal; 'never'. */
  policy: 'always' | 'on-failure' | 'never';
  backoff?: BackoffSpec;
  /** Uptime after which the backoff starts again from initialMs. */
  minUptimeMs?: number;
  /** More restarts than this within windowMs → 'failed'. */
  maxRestarts?: number;
  windowMs?: number;
  /** Exit codes that mean "stopped on purpose": never restarted, even with 'always'. */
  stopExitCodes?: number[];
}

export type ResolvedRestartPolicy = Required<Omit<RestartPolicy, 'backoff'>> & { backoff: Required<BackoffSpec> };

export const DEFAULT_RESTART_POLICY: Readonly<ResolvedRestartPolicy> = Object.freeze({
  policy: 'on-failure',
  backoff: Object.freeze({ initialMs: 100, factor: 2, maxMs: 30_000, jitter: 0.1 }),
  minUptimeMs: 1000,
  maxRestarts: 10,
  windowMs: 60_000,
  stopExitCodes: [],
}) as ResolvedRestartPolicy;

function nonNegative(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

/** Fills in defaults and refuses anything out of range with ERR_LIBIPC_INVALID_ARGUMENT. */
export function resolveRestartPolicy(p: RestartPolicy | undefined): ResolvedRestartPolicy {
  if (p === undefined) return { ...DEFAULT_RESTART_POLICY, backoff: { ...DEFAULT_RESTART_POLICY.backoff }, stopExitCodes: [] };
  if (typeof p !== 'object' || p === null) throw new InvalidArgumentError('restart must be a RestartPolicy object');
  if (!['always', 'on-failure', 'never'].includes(p.policy)) {
    throw new InvalidArgumentError(`restart.policy must be 'always', 'on-failure' or 'never', got ${JSON.stringify(p.policy)}`);
  }
  const d = DEFAULT_RESTART_POLICY;
  const b = p.backoff ?? d.backoff;
  if (typeof b !== 'object' || b === null) throw new InvalidArgumentError('restart.backoff must be an object');
  const initialMs = nonNegative(b.initialMs, 'restart.backoff.initialMs');
  const maxMs = nonNegative(b.maxMs, 'restart.backoff.maxMs');
  if (typeof b.factor !== 'number' || !Number.isFinite(b.factor) || b.factor < 1) {
    throw new InvalidArgumentError(`restart.backoff.factor must be a number >= 1 (delays must not shrink), got ${String(b.factor)}`);
  }
  if (maxMs < initialMs) {
    throw new InvalidArgumentError(`restart.backoff.maxMs (${maxMs}) must be >= initialMs (${initialMs})`);
  }
  const jitter = nonNegative(b.jitter ?? 0, 'restart.backoff.jitter');
  if (jitter > 1) throw new InvalidArgumentError(`restart.backoff.jitter must be between 0 and 1, got ${jitter}`);
  const maxRestarts = nonNegative(p.maxRestarts ?? d.maxRestarts, 'restart.maxRestarts');
  if (!Number.isInteger(maxRestarts)) throw new InvalidArgumentError(`restart.maxRestarts must be a whole number, got ${maxRestarts}`);
  const windowMs = nonNegative(p.windowMs ?? d.windowMs, 'restart.windowMs');
  const stopExitCodes = p.stopExitCodes ?? [];
  if (!Array.isArray(stopExitCodes) || !stopExitCodes.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
    throw new InvalidArgumentError(`restart.stopExitCodes must be an array of exit codes 0-255, got ${JSON.stringify(stopExitCodes)}`);
  }
  return {
    policy: p.policy,
    backoff: { initialMs, factor: b.factor, maxMs, jitter },
    minUptimeMs: nonNegative(p.minUptimeMs ?? d.minUptimeMs, 'restart.minUptimeMs'),
    maxRestarts,
    windowMs,
    stopExitCodes: [...stopExitCodes],
  };
}

/** A clean exit: code 0 or one of stopExitCodes. Anything else (a signal, another code) is a failure. */
export function isCleanExit(policy: ResolvedRestartPolicy, st: ExitStatus): boolean {
  return st.exited && st.exitCode !== null && (st.exitCode === 0 || policy.stopExitCodes.includes(st.exitCode));
}

/** Whether the policy restarts a process that ended with `st`. */
export function shouldRestart(policy: ResolvedRestartPolicy, st: ExitStatus): boolean {
  if (policy.policy === 'never') return false;
  if (st.exited && st.exitCode !== null && policy.stopExitCodes.includes(st.exitCode)) return false;
  return policy.policy === 'always' || !isCleanExit(policy, st);
}

/** What follows an unplanned exit: stay down (stopped or failed), or restart after the backoff. */
export type AfterExit =
  | { to: 'stopped' | 'failed'; reason: string; restartTimes: number[] }
  | { to: 'backoff'; restartTimes: number[] };

/**
 * The policy applied to an exit at `now`, given the times of the restarts so far and how long the process had been
 * up (`uptimeMs`, from its spawn). A process that stayed up `minUptimeMs` earned a fresh budget: its earlier restarts
 * no longer count (as PM2's min_uptime), so `always` keeps restarting a service that runs a while between crashes;
 * only a crash loop faster than that uses up `maxRestarts` within `windowMs`. Pure: the caller keeps the times.
 */
export function afterExit(p: ResolvedRestartPolicy, st: ExitStatus, restartTimes: readonly number[], now: number, uptimeMs: number | undefined, why: string): AfterExit {
  if (!shouldRestart(p, st)) {
    return { to: isCleanExit(p, st) ? 'stopped' : 'failed', reason: `${why}; restart policy '${p.policy}' does not restart it`, restartTimes: [...restartTimes] };
  }
  const stayedUp = uptimeMs !== undefined && uptimeMs >= p.minUptimeMs;
  const recent = stayedUp ? [] : restartTimes.filter((t) => t > now - p.windowMs);
  if (recent.length >= p.maxRestarts) {
    return {
      to: 'failed',
      reason: `${why}; gave up after ${recent.length} restart(s) within ${p.windowMs} ms, each up less than minUptimeMs ${p.minUptimeMs} ms (maxRestarts ${p.maxRestarts})`,
      restartTimes: recent,
    };
  }
  return { to: 'backoff', restartTimes: [...recent, now] };
}
