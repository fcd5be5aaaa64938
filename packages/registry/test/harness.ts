// Test harness: registries and child processes that are closed and killed after each test, and a check
// that nothing of the test's domains is left in /dev/shm afterwards.
import { afterEach, expect } from 'vitest';
import { ServiceRegistry, type RegistryOptions } from '../src/index.js';
import { type NodeChild, shmObjects, spawnNode } from '../../../test/helpers.js';

export const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

const registries: ServiceRegistry[] = [];
const children: NodeChild[] = [];

export function openRegistry(domain: string, opts?: RegistryOptions): ServiceRegistry {
  const r = new ServiceRegistry(domain, opts);
  registries.push(r);
  return r;
}

export function startChild(script: string, args: string[]): NodeChild {
  const c = spawnNode(fixture(script), args);
  children.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => (c.child.kill('SIGCONT'), c.kill())));
  const domains = new Set(registries.map((r) => r.domain));
  for (const r of registries.splice(0)) {
    // This process is alive: its own entries would keep the segment. Withdraw them, then close.
    if (!r.isClosed) r.clear();
    r.close();
  }
  for (const domain of domains) expect(shmObjects(`registry.${domain}`), 'segments left behind').toEqual([]);
});
