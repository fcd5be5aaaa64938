import { resolveExecutable, type RestartPolicy } from '@libipc/process';
import { InvalidArgumentError, option, parseOptions, SpawnError, validateName } from '@libipc/shm';
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
  /**
   * Fail over the moment an instance's death lease breaks (default true): the kernel breaks it as the process
   * starts to die, before its exit event. false: the exit event and heartbeats alone (for comparison).
   */
  watchLeases?: boolean;
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

const HOUR_MS = 3_600_000;
const strings = option.custom<string[]>((v) => Array.isArray(v) && v.length <= 4096 && v.every((a) => typeof a === 'string'), 'an array of strings');
const envRecord = option.custom<Record<string, string>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'),
  'an object of string values, e.g. { NODE_ENV: "production" }',
);
const GROUP_OPTIONS = {
  serviceName: option.custom<string>(() => true, 'a name'), // checked by validateName below, with its own code
  executable: option.custom<string>(() => true, 'a path or command name'), // checked below (ERR_LIBIPC_SPAWN)
  args: strings,
  replicas: option.int(1, MAX_REPLICAS),
  autoRespawn: option.boolean(),
  spawnTimeoutMs: option.ms(1, HOUR_MS),
  heartbeatTimeoutMs: option.ms(1, HOUR_MS),
  onHung: option.oneOf('kill', 'fence'),
  restart: option.custom<RestartPolicy>((v) => typeof v === 'object' && v !== null, 'a RestartPolicy object'),
  env: envRecord,
  stdio: option.oneOf('inherit', 'pipe', 'ignore'),
  cwd: option.string(4096),
  watchLeases: option.boolean(),
};

/** Checks a group's configuration up front, so that a bad one fails at construction, not at the first crash. */
export function resolveGroupConfig(config: GroupConfig): ResolvedGroupConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new InvalidArgumentError('ServiceGroup needs a config object: { serviceName, executable, … }');
  }
  const c = parseOptions(config, GROUP_OPTIONS, 'ServiceGroup config');
  validateName(c.serviceName, 'serviceName');
  const replicas = c.replicas ?? 2;
  validateName(instanceName(c.serviceName, replicas - 1), 'instance name (serviceName + "." + id)');
  if (typeof c.executable !== 'string' || c.executable.length === 0) {
    throw new SpawnError('executable must be a non-empty path or command name');
  }
  resolveExecutable(c.executable, c.env?.PATH ?? process.env.PATH, c.cwd ?? process.cwd());
  return {
    serviceName: c.serviceName,
    executable: c.executable,
    args: c.args ?? [],
    replicas,
    autoRespawn: c.autoRespawn ?? true,
    spawnTimeoutMs: c.spawnTimeoutMs ?? 10_000,
    heartbeatTimeoutMs: c.heartbeatTimeoutMs,
    onHung: c.onHung ?? 'kill',
    restart: c.autoRespawn === false ? { policy: 'never' } : (c.restart ?? DEFAULT_GROUP_RESTART),
    env: c.env ?? {},
    stdio: c.stdio ?? 'inherit',
    cwd: c.cwd,
    watchLeases: c.watchLeases ?? true,
  };
}
