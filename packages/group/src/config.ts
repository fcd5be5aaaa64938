import { resolveExecutable, type RestartPolicy } from '@libipc/process';
import { InvalidArgumentError, SpawnError, validateName } from '@libipc/shm';
import { instanceName } from './environment.js';

export interface GroupConfig {
  /** Instances are `<serviceName>.<id>` in the registry's domain, and the group record is `<serviceName>`. */
  serviceName: string;
  executable: string;
  /** Each instance runs `executable ...args <id>`. */
  args?: string[];
  /** Instances, 1-64 (default 2): one primary, the rest standby. */
  replicas?: number;
  /** Respawn dead instances in the background with `restart`'s backoff (default true). */
  autoRespawn?: boolean;
  /** How long an instance may take to register (default 10 000 ms). */
  spawnTimeoutMs?: number;
  /** Fail over an instance whose registry heartbeat is older than this (default: off). */
  heartbeatTimeoutMs?: number;
  /** A hung instance is killed (default) or only fenced (left running, never primary until it beats again). */
  onHung?: 'kill' | 'fence';
  /** Restart policy of each instance (default: always, backoff 100 ms ×2 up to 5 s, at most 10 restarts a minute). */
  restart?: RestartPolicy;
  /** Extra environment for the instances. */
  env?: Record<string, string>;
  stdio?: 'inherit' | 'pipe' | 'ignore';
  cwd?: string;
}

export type ResolvedGroupConfig = Required<Omit<GroupConfig, 'heartbeatTimeoutMs' | 'restart' | 'cwd'>> & {
  heartbeatTimeoutMs?: number;
  restart: RestartPolicy;
  cwd?: string;
};

export const DEFAULT_GROUP_RESTART: RestartPolicy = {
  policy: 'always',
  backoff: { initialMs: 100, factor: 2, maxMs: 5_000, jitter: 0.1 },
  minUptimeMs: 1_000,
  maxRestarts: 10,
  windowMs: 60_000,
};

const MAX_REPLICAS = 64;

function positive(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(`${what} must be a number > 0 (milliseconds), got ${String(value)}`);
  }
  return value;
}

/** Checks a group's configuration up front, so that a bad one fails at construction, not at the first crash. */
export function resolveGroupConfig(config: GroupConfig): ResolvedGroupConfig {
  if (typeof config !== 'object' || config === null) throw new InvalidArgumentError('ServiceGroup needs a config object');
  validateName(config.serviceName, 'serviceName');
  const replicas = config.replicas ?? 2;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw new InvalidArgumentError(`replicas must be a whole number from 1 to ${MAX_REPLICAS}, got ${String(replicas)}`);
  }
  validateName(instanceName(config.serviceName, replicas - 1), 'instance name (serviceName + "." + id)');
  if (typeof config.executable !== 'string' || config.executable.length === 0) {
    throw new SpawnError('executable must be a non-empty path or command name');
  }
  resolveExecutable(config.executable, config.env?.PATH ?? process.env.PATH, config.cwd ?? process.cwd());
  const args = config.args ?? [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) {
    throw new InvalidArgumentError('args must be an array of strings');
  }
  const onHung = config.onHung ?? 'kill';
  if (onHung !== 'kill' && onHung !== 'fence') throw new InvalidArgumentError(`onHung must be 'kill' or 'fence', got ${JSON.stringify(onHung)}`);
  return {
    serviceName: config.serviceName,
    executable: config.executable,
    args,
    replicas,
    autoRespawn: config.autoRespawn ?? true,
    spawnTimeoutMs: positive(config.spawnTimeoutMs ?? 10_000, 'spawnTimeoutMs'),
    heartbeatTimeoutMs: config.heartbeatTimeoutMs === undefined ? undefined : positive(config.heartbeatTimeoutMs, 'heartbeatTimeoutMs'),
    onHung,
    restart: config.autoRespawn === false ? { policy: 'never' } : (config.restart ?? DEFAULT_GROUP_RESTART),
    env: config.env ?? {},
    stdio: config.stdio ?? 'inherit',
    cwd: config.cwd,
  };
}
