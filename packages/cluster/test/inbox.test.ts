// Requests in a node's inbox are checked before anything is spawned: only registered launchers, args that
// the launcher's argsSchema accepts, a bounded size, well-formed JSON. Anything else is withdrawn, refused with
// a coded error and a 'request-refused' event (the node that asked gets the error), and never spawned.
import { once } from 'node:events';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNode, type DaemonSpec, type Launcher, type RefusedRequest } from '../src/index.js';
import { uniqueName } from '../../../test/helpers.js';
import { type EtcdServer, startEtcd } from './etcd.js';

let etcd: EtcdServer;
let admin: Etcd3;
beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoint });
});
afterAll(async () => {
  admin?.close();
  await etcd?.close();
});

const open: ClusterNode[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.leave()));
});

async function join(cluster: string, nodeName: string): Promise<ClusterNode> {
  const n = await ClusterNode.join({ endpoints: [etcd.endpoint], cluster, nodeName, leaseTtlS: 2 });
  open.push(n);
  return n;
}

async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A launcher that records what it starts, with an argsSchema: args must be [a positive integer]. */
function checked(schema: Launcher['argsSchema']): Launcher & { started: string[] } {
  const l = {
    started: [] as string[],
    argsSchema: schema,
    async spawn(d: DaemonSpec) {
      l.started.push(d.processName);
    },
  };
  return l;
}

const positive = (args: unknown[]) => (args.length === 1 && Number.isInteger(args[0]) && (args[0] as number) > 0) || 'args must be [a positive integer]';

/** A Standard Schema (the interface zod, valibot and arktype implement), written by hand. */
const standard = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (v: unknown) =>
      Array.isArray(v) && v.length === 1 && typeof v[0] === 'string' ? { value: v } : { issues: [{ message: 'expected [a string]', path: [0] }] },
  },
};

describe('inbox requests are checked', () => {
  it('spawnRegister refuses args its launcher refuses, before any request is written', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const l = checked(positive);
    a.registerLauncher('S', l);
    await expect(a.spawnRegister('S', 'x', ['nope'])).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: /positive integer/ });
    await expect(a.spawnRegister('S', 'x', [])).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' });
    expect(await admin.getAll().prefix(`libipc/cluster/${cluster}/i/`).keys()).toEqual([]);
    expect(await a.spawnRegister('S', 'x', [3])).toEqual({ node: 'a' });
    expect(l.started).toEqual(['x']);

    a.registerLauncher('T', checked(standard));
    await expect(a.spawnRegister('T', 'y', [1])).rejects.toMatchObject({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: /expected \[a string\]/ });
    expect(await a.spawnRegister('T', 'y', ['ok'])).toEqual({ node: 'a' });
  });

  it('a bad argsSchema or keepRunningWhenFenced is refused at registerLauncher', async () => {
    const a = await join(uniqueName('c'), 'a');
    expect(() => a.registerLauncher('X', { spawn: async () => undefined, argsSchema: 5 as never })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
    expect(() => a.registerLauncher('X', { spawn: async () => undefined, keepRunningWhenFenced: 'yes' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }),
    );
  });

  // Each case: a request written straight into b's inbox (as anyone with write access to etcd could), and the
  // code b refuses it with.
  const cases: Array<[string, (name: string) => string, string]> = [
    ['args its launcher refuses', (name) => JSON.stringify({ launcher: 'S', processName: name, args: ['rm -rf /'], id: 'a.1', replyTo: 'a' }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['a request over the size bound', (name) => JSON.stringify({ launcher: 'S', processName: name, args: ['z'.repeat(80_000)], id: 'a.2', replyTo: 'a' }), 'ERR_LIBIPC_TOO_LARGE'],
    ['a request that is not JSON', () => '{"launcher": "S", ', 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['a request that is a JSON array', () => '["S"]', 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['a request naming another process', () => JSON.stringify({ launcher: 'S', processName: 'other', args: [1], id: 'a.3' }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['a launcher name that is not a name', (name) => JSON.stringify({ launcher: '../x', processName: name, id: 'a.4' }), 'ERR_LIBIPC_INVALID_NAME'],
  ];
  for (const [what, body, code] of cases) {
    it(`${what}: withdrawn, refused with ${code} and an event, never spawned`, async () => {
      const cluster = uniqueName('c');
      const a = await join(cluster, 'a');
      const b = await join(cluster, 'b');
      const lb = checked(positive);
      b.registerLauncher('S', lb);
      await eventually(() => a.addressBook().getAvailableNodes().length === 2, 'a sees b');
      const root = `libipc/cluster/${cluster}/`;
      const lease = (await admin.get(`${root}b/n/b`).exec()).kvs[0]!.lease;
      const key = `${root}i/b/s/evil`;
      const refused = once(b, 'request-refused') as Promise<[RefusedRequest]>;
      const failed = once(b, 'daemon-failed');
      await admin.put(key).value(body('evil')).lease(lease);
      const [event] = await refused;
      expect(event.processName).toBe('evil');
      expect(event.error).toMatchObject({ code });
      await failed;
      await eventually(async () => (await admin.get(key).exec()).kvs.length === 0, 'the request withdrawn');
      expect(lb.started).toEqual([]);
      expect(b.locate('evil')).toBeUndefined();
    });
  }

  it('a launcher the node never registers: refused with ERR_LIBIPC_NOT_FOUND after the grace, never spawned; the asker gets the code', async () => {
    const cluster = uniqueName('c');
    const a = await join(cluster, 'a');
    const b = await join(cluster, 'b');
    a.registerLauncher('S', checked(positive));
    b.registerLauncher('S', checked(positive));
    await eventually(() => a.addressBook().getAvailableNodes().length === 2, 'a sees b');
    const root = `libipc/cluster/${cluster}/`;
    const lease = (await admin.get(`${root}b/n/b`).exec()).kvs[0]!.lease;
    const refused = once(b, 'request-refused') as Promise<[RefusedRequest]>;
    await admin.put(`${root}i/b/s/ghost`).value(JSON.stringify({ launcher: 'Shell', processName: 'ghost', id: 'a.9', replyTo: 'a' })).lease(lease);
    const [event] = await refused;
    expect(event).toMatchObject({ processName: 'ghost', launcher: 'Shell', from: 'a', error: { code: 'ERR_LIBIPC_NOT_FOUND' } });
    expect(b.locate('ghost')).toBeUndefined();
  });
});
