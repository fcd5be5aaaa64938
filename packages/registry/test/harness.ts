// Test harness: registries and child processes that are closed and killed after each test.
import { afterEach } from 'vitest';
import { ServiceRegistry, type RegistryOptions } from '../src/index.js';
import { type NodeChild, spawnNode } from '../../../test/helpers.js';

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
  for (const r of registries.splice(0)) r.close();
});
