import { READY_FD_ENV } from '@libipc/process';
import { selfIdentity } from '@libipc/shm';

/** DESIGN.md's environment contract between a host and the processes it starts. */
export const ENV = {
  domain: 'LIBIPC_DOMAIN',
  service: 'LIBIPC_SERVICE',
  instanceId: 'LIBIPC_INSTANCE_ID',
  parentPid: 'LIBIPC_PARENT_PID',
  parentStart: 'LIBIPC_PARENT_START',
  readyFd: READY_FD_ENV,
} as const;

/**
 * A service's environment: the global env, under the spec's env, under the contract (which always wins).
 * LIBIPC_READY_FD is added by @libipc/process at spawn.
 */
export function serviceEnv(
  globalEnv: Record<string, string>,
  specEnv: Record<string, string>,
  contract: { service: string; instanceId: number; domain?: string },
): Record<string, string> {
  const me = selfIdentity();
  const env: Record<string, string> = {
    ...globalEnv,
    ...specEnv,
    [ENV.service]: contract.service,
    [ENV.instanceId]: String(contract.instanceId),
    [ENV.parentPid]: String(me.pid),
    [ENV.parentStart]: String(me.startTime),
  };
  if (contract.domain !== undefined) env[ENV.domain] = contract.domain;
  return env;
}
