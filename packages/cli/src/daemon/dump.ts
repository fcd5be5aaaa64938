import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { IncompatibleError, NotFoundError } from '@libipc/shm';
import type { ServiceSpec } from '@libipc/supervisor';

/** What `libipc save` writes and `libipc resurrect` starts again: every service's spec, and whether it was wanted running. */
export interface Dump {
  version: 1;
  savedAt: string;
  services: Array<{ spec: ServiceSpec; running: boolean }>;
}

export function writeDump(path: string, services: Dump['services']): Dump {
  const dump: Dump = { version: 1, savedAt: new Date().toISOString(), services };
  // Temporary file + rename: a crash leaves the old dump or the new one, never half of one.
  writeFileSync(`${path}.tmp`, `${JSON.stringify(dump, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return dump;
}

export function readDump(path: string): Dump {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`nothing was saved (no ${path}); 'libipc save' writes the current service list`);
    throw err;
  }
  let data: Dump;
  try {
    data = JSON.parse(text) as Dump;
  } catch {
    throw new IncompatibleError(`${path} is not JSON; 'libipc save' writes it again`);
  }
  if (data?.version !== 1 || !Array.isArray(data.services) || !data.services.every((s) => s && typeof s.spec?.name === 'string')) {
    throw new IncompatibleError(`${path} is not a dump of this libipc version; 'libipc save' writes it again`);
  }
  return data;
}
