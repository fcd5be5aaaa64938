// What the group tests share: a ServiceGroup on a fresh registry domain, with a log file its members write to.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ServiceRegistry } from '@libipc/registry';
import { type GroupConfig, ServiceGroup } from '../src/index.js';
import { shmObjects, uniqueName } from '../../../test/helpers.js';

/**
 * A group of service 'svc' configured by `config(log)`; `cleanup` gets a step that stops it and checks that no
 * entry and no shared-memory object of the domain is left.
 */
export function groupFixture(prefix: string, cleanup: Array<() => unknown>, config: (log: string) => GroupConfig) {
  const domain = uniqueName(prefix);
  const dir = mkdtempSync(join(tmpdir(), `libipc-${prefix}-`));
  const log = join(dir, 'members.log');
  const registry = new ServiceRegistry(domain);
  const group = new ServiceGroup(registry, config(log));
  cleanup.push(async () => {
    await group.stop(1000);
    expect(registry.findAll('svc.')).toEqual([]);
    registry.close();
    rmSync(dir, { recursive: true, force: true });
    expect(shmObjects(domain)).toEqual([]);
  });
  return { domain, registry, group, log, dir };
}
