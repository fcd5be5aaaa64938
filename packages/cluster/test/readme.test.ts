// The README's example (examples/two-nodes.mjs, the same code) runs as written, exits 0 and leaves nothing in etcd.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnNode } from '../../../test/helpers.js';
import { type EtcdServer, startEtcd } from './etcd.js';

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.close();
});

it('the README example runs as written and leaves nothing behind', async () => {
  const example = readFileSync(new URL('../examples/two-nodes.mjs', import.meta.url), 'utf8');
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /```js runnable file=two-nodes\.mjs[^\n]*\n([\s\S]*?)```/.exec(readme)![1]!; // the two-node example
  expect(example).toContain(block.trim());
  // The example reads where etcd is from ETCD_ENDPOINTS (etcdOptionsFromEnv); it resolves '@libipc/cluster' to
  // this package (a package may import itself by name).
  expect(example).toContain('etcdOptionsFromEnv()');
  const run = spawnNode(fileURLToPath(new URL('../examples/two-nodes.mjs', import.meta.url)), [], { ETCD_ENDPOINTS: etcd.endpoint });
  const { code } = await run.exited;
  expect(code).toBe(0);
  await run.line('nodes: node-a, node-b; on node-b: api');
  await run.line('thumbnailer placed on ');
  const admin = new Etcd3({ hosts: etcd.endpoint });
  try {
    expect(await admin.getAll().prefix('libipc/').keys()).toEqual([]);
  } finally {
    admin.close();
  }
});
