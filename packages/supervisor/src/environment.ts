import { contractEnv, ENV } from '@libipc/process';

export { ENV };

/**
 * A service's environment: the global env, under the spec's env, under the contract (which always wins).
 * LIBIPC_READY_FD is added by @libipc/process at spawn.
 */
export function serviceEnv(
  globalEnv: Record<string, string>,
  specEnv: Record<string, string>,
  contract: { service: string; instanceId: number; domain?: string },
): Record<string, string> {
  return { ...globalEnv, ...specEnv, ...contractEnv(contract) };
}
