// The README's example (examples/two-nodes.mjs, the same code) runs as written, exits 0 and leaves nothing in etcd.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  // Same code, pointed at the test's etcd instead of 127.0.0.1:2379; next to the package, so that
  // '@libipc/cluster' resolves to it.
  expect(example).toContain("'http://127.0.0.1:2379'");
  const copy = fileURLToPath(new URL(`./fixtures/readme-example-${process.pid}.mjs`, import.meta.url));
  writeFileSync(copy, example.replace("'http://127.0.0.1:2379'", `'${etcd.endpoint}'`));
  try {
    const run = spawnNode(copy);
    const { code } = await run.exited;
    expect(code).toBe(0);
    await run.line('nodes: node-a, node-b; on node-b: api');
    await run.line('thumbnailer placed on ');
  } finally {
    rmSync(copy, { force: true });
  }
  const admin = new Etcd3({ hosts: etcd.endpoint });
  try {
    expect(await admin.getAll().prefix('libipc/').keys()).toEqual([]);
  } finally {
    admin.close();
  }
});
