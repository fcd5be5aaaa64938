import { describeValue, InvalidArgumentError, selfIdentity, validateName } from '@libipc/shm';
import { READY_FD_ENV } from './spawn.js';

/**
 * The environment contract between a host (a group, a supervisor) and the processes it starts (DESIGN.md): one
 * definition for every host and every service.
 */
export const ENV = {
  domain: 'LIBIPC_DOMAIN',
  service: 'LIBIPC_SERVICE',
  instanceId: 'LIBIPC_INSTANCE_ID',
  parentPid: 'LIBIPC_PARENT_PID',
  parentStart: 'LIBIPC_PARENT_START',
  readyFd: READY_FD_ENV,
} as const;

export interface InstanceContext {
  domain: string;
  service: string;
  id: number;
  parent?: { pid: number; startTime: bigint };
}

/** The instance name of a started service: `<service>.<id>`. */
export function instanceName(service: string, id: number): string {
  validateName(service, 'service name');
  if (!Number.isInteger(id) || id < 0) throw new InvalidArgumentError(`instance id must be a whole number >= 0, got ${describeValue(id)}`);
  return `${service}.${id}`;
}

/**
 * The contract's variables for a process this one starts: service, instance id, this process as the parent
 * (pid + start time), and the registry domain when there is one. LIBIPC_READY_FD is added by spawn().
 */
export function contractEnv(contract: { service: string; instanceId: number; domain?: string }): Record<string, string> {
  if (typeof contract !== 'object' || contract === null) {
    throw new InvalidArgumentError(`contractEnv needs { service, instanceId, domain? }, got ${describeValue(contract)}`);
  }
  instanceName(contract.service, contract.instanceId); // both checked
  if (contract.domain !== undefined) validateName(contract.domain, 'domain');
  const me = selfIdentity();
  const env: Record<string, string> = {
    [ENV.service]: contract.service,
    [ENV.instanceId]: String(contract.instanceId),
    [ENV.parentPid]: String(me.pid),
    [ENV.parentStart]: String(me.startTime),
  };
  if (contract.domain !== undefined) env[ENV.domain] = contract.domain;
  return env;
}

/**
 * Reads the contract inside a started instance. Run by hand, the id comes from the last argument and the
 * domain and service from `fallback`.
 */
export function readInstanceContext(
  env: NodeJS.ProcessEnv = process.env,
  argv: string[] = process.argv,
  fallback: { domain?: string; service?: string } = {},
): InstanceContext {
  if (typeof env !== 'object' || env === null) throw new InvalidArgumentError(`env must be an environment object (process.env), got ${describeValue(env)}`);
  if (!Array.isArray(argv)) throw new InvalidArgumentError(`argv must be an array of strings (process.argv), got ${describeValue(argv)}`);
  if (typeof fallback !== 'object' || fallback === null) fallback = {};
  const domain = env[ENV.domain] ?? fallback.domain;
  const service = env[ENV.service] ?? fallback.service;
  const rawId = env[ENV.instanceId] ?? argv[argv.length - 1];
  if (domain === undefined || service === undefined) {
    throw new InvalidArgumentError(
      `${ENV.domain} and ${ENV.service} are not set: start this process from a ServiceGroup, or pass { domain, service } when running it by hand`,
    );
  }
  validateName(domain, 'domain');
  validateName(service, 'service name');
  const id = Number(rawId);
  if (!Number.isInteger(id) || id < 0) {
    throw new InvalidArgumentError(`instance id must be a whole number >= 0 (${ENV.instanceId} or the last argument), got ${describeValue(rawId)}`);
  }
  validateName(instanceName(service, id), 'instance name');
  const parentPid = Number(env[ENV.parentPid]);
  const parentStart = env[ENV.parentStart];
  const parent =
    Number.isInteger(parentPid) && parentPid > 0 && parentStart !== undefined && /^\d+$/.test(parentStart)
      ? { pid: parentPid, startTime: BigInt(parentStart) }
      : undefined;
  return { domain, service, id, parent };
}
