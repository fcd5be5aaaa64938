import { NotFoundError, SharedMemory } from '@libipc/shm';

/** Registry domains present in /dev/shm (libipc.registry.<domain>). */
export function registryDomains(): string[] {
  return SharedMemory.list('registry').filter((d) => /^[A-Za-z0-9._-]{1,63}$/.test(d));
}

/** The domains a command works on: the one asked for (which must exist), or every one found. */
export function domainsFor(domain: string | undefined): string[] {
  if (domain === undefined) return registryDomains();
  if (!SharedMemory.exists(domain, { kind: 'registry' })) {
    throw new NotFoundError(`there is no registry domain '${domain}' (no /dev/shm/libipc.registry.${domain}); 'libipc ls' lists the domains that exist`);
  }
  return [domain];
}
