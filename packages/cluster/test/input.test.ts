// Bad input is refused with a LibipcError and a stable code, before anything reaches etcd.
import { createServer } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibipcError } from '@libipc/shm';
import { ClusterNode, type Launcher } from '../src/index.js';
import { uniqueName } from '../../../test/helpers.js';
import { type EtcdServer, startEtcd } from './etcd.js';

let etcd: EtcdServer;
let node: ClusterNode;
const cluster = uniqueName('c');
const launcher: Launcher = { spawn: async () => undefined };

beforeAll(async () => {
  etcd = await startEtcd();
  node = await ClusterNode.join({ endpoints: [etcd.endpoint], cluster, nodeName: 'n1', leaseTtlS: 2 });
  node.registerLauncher('L', launcher);
});
afterAll(async () => {
  await node?.leave();
  await etcd?.close();
});

const base = () => ({ endpoints: [etcd.endpoint], cluster: uniqueName('c'), nodeName: 'n' });

async function codeOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (err) {
    expect(err).toBeInstanceOf(LibipcError);
    expect((err as Error).message.length).toBeGreaterThan(10);
    return (err as LibipcError).code;
  }
  throw new Error('did not throw');
}

describe('ClusterNode.join refuses bad options', () => {
  const cases: Array<[string, () => Record<string, unknown> | null | undefined, string]> = [
    ['no options', () => undefined, 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['null options', () => null, 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['missing endpoints', () => ({ ...base(), endpoints: undefined }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['empty endpoints', () => ({ ...base(), endpoints: [] }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['endpoints as a string', () => ({ ...base(), endpoints: 'http://127.0.0.1:2379' }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['endpoint that is no address', () => ({ ...base(), endpoints: ['not an endpoint'] }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['empty endpoint', () => ({ ...base(), endpoints: [''] }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['endpoint with a path', () => ({ ...base(), endpoints: ['http://127.0.0.1:2379/v3'] }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['endpoint without a port', () => ({ ...base(), endpoints: ['http://127.0.0.1'] }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['endpoint of another scheme', () => ({ ...base(), endpoints: ['ftp://127.0.0.1:2379'] }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['endpoint port out of range', () => ({ ...base(), endpoints: ['http://127.0.0.1:99999'] }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['endpoint that is not a string', () => ({ ...base(), endpoints: [2379] }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['empty cluster name', () => ({ ...base(), cluster: '' }), 'ERR_LIBIPC_INVALID_NAME'],
    ['oversize cluster name', () => ({ ...base(), cluster: 'c'.repeat(64) }), 'ERR_LIBIPC_INVALID_NAME'],
    ['cluster name with a slash', () => ({ ...base(), cluster: 'a/b' }), 'ERR_LIBIPC_INVALID_NAME'],
    ['missing nodeName', () => ({ ...base(), nodeName: undefined }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['empty nodeName', () => ({ ...base(), nodeName: '' }), 'ERR_LIBIPC_INVALID_NAME'],
    ['oversize nodeName', () => ({ ...base(), nodeName: 'n'.repeat(64) }), 'ERR_LIBIPC_INVALID_NAME'],
    ['nodeName of another type', () => ({ ...base(), nodeName: 7 }), 'ERR_LIBIPC_INVALID_NAME'],
    ['leaseTtlS 0', () => ({ ...base(), leaseTtlS: 0 }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['leaseTtlS fractional', () => ({ ...base(), leaseTtlS: 1.5 }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['leaseTtlS a string', () => ({ ...base(), leaseTtlS: '5' }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['requestTimeoutMs negative', () => ({ ...base(), requestTimeoutMs: -1 }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['recoveryIntervalMs Infinity', () => ({ ...base(), recoveryIntervalMs: Infinity }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['registry that is not one', () => ({ ...base(), registry: {} }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['unknown option', () => ({ ...base(), leaseTTL: 5 }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['fenceMarginMs negative', () => ({ ...base(), fenceMarginMs: -1 }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['fenceMarginMs of 2/3 of the TTL', () => ({ ...base(), leaseTtlS: 3, fenceMarginMs: 2000 }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['fenceMarginMs over the TTL', () => ({ ...base(), fenceMarginMs: 10_000 }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['tls that is a string', () => ({ ...base(), tls: '/ca.crt' }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['tls with an unknown field', () => ({ ...base(), tls: { cafile: '/ca.crt' } }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['tls cert without key', () => ({ ...base(), tls: { cert: '/c.crt' } }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['tls field of another type', () => ({ ...base(), tls: { ca: 5 } }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['tls with http:// endpoints', () => ({ ...base(), tls: { ca: Buffer.from('x') } }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['tls ca that cannot be read', () => ({ ...base(), endpoints: ['127.0.0.1:1'], tls: { ca: '/nonexistent/ca.crt' } }), 'ERR_LIBIPC_TLS'],
    ['tls ca that is not PEM', () => ({ ...base(), endpoints: ['127.0.0.1:1'], tls: { ca: Buffer.from('not a certificate') } }), 'ERR_LIBIPC_TLS'],
    ['auth without username', () => ({ ...base(), auth: { password: 'p' } }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['auth with an empty username', () => ({ ...base(), auth: { username: '', password: 'p' } }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['auth password not a string', () => ({ ...base(), auth: { username: 'u', password: 5 } }), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['auth given to an etcd without authentication', () => ({ ...base(), auth: { username: 'u', password: 'p' } }), 'ERR_LIBIPC_AUTH'],
  ];
  for (const [what, opts, code] of cases) {
    it(what, async () => {
      expect(await codeOf(() => ClusterNode.join(opts() as never))).toBe(code);
    });
  }

  it('suggests the option meant', async () => {
    await expect(ClusterNode.join({ ...base(), leaseTtl: 5 } as never)).rejects.toThrow(/did you mean 'leaseTtlS'/);
  });

  it("an endpoint without a scheme is etcdctl's host:port (plain http)", async () => {
    const n = await ClusterNode.join({ ...base(), endpoints: [etcd.endpoint.replace('http://', '')] });
    await n.leave();
  });

  it('null means the default for an optional option', async () => {
    const n = await ClusterNode.join({ ...base(), leaseTtlS: null, requestTimeoutMs: null } as never);
    await n.leave();
  });

  it('etcd not listening on the endpoint: ERR_LIBIPC_CLUSTER_UNAVAILABLE', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    server.close();
    await once(server, 'close');
    const t0 = performance.now();
    expect(await codeOf(() => ClusterNode.join({ ...base(), endpoints: [`http://127.0.0.1:${port}`], requestTimeoutMs: 2000 }))).toBe(
      'ERR_LIBIPC_CLUSTER_UNAVAILABLE',
    );
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('a node name already live in the cluster: ERR_LIBIPC_EXISTS', async () => {
    expect(await codeOf(() => ClusterNode.join({ endpoints: [etcd.endpoint], cluster, nodeName: 'n1' }))).toBe('ERR_LIBIPC_EXISTS');
  });
});

describe('operations refuse bad input', () => {
  const cases: Array<[string, () => unknown, string]> = [
    ['register empty name', () => node.register(''), 'ERR_LIBIPC_INVALID_NAME'],
    ['register oversize name', () => node.register('x'.repeat(64)), 'ERR_LIBIPC_INVALID_NAME'],
    ['register name with a slash', () => node.register('a/b'), 'ERR_LIBIPC_INVALID_NAME'],
    ['register a number', () => node.register(5 as never), 'ERR_LIBIPC_INVALID_NAME'],
    ['unregister empty name', () => node.unregister(''), 'ERR_LIBIPC_INVALID_NAME'],
    ['locate empty name', () => node.locate(''), 'ERR_LIBIPC_INVALID_NAME'],
    ['locate oversize name', () => node.locate('x'.repeat(100)), 'ERR_LIBIPC_INVALID_NAME'],
    ['addressBook().locate bad name', () => node.addressBook().locate('a b'), 'ERR_LIBIPC_INVALID_NAME'],
    ['addressBook().pickNode empty name', () => node.addressBook().pickNode(''), 'ERR_LIBIPC_INVALID_NAME'],
    ['addressBook().getProcessList bad node', () => node.addressBook().getProcessList('a/b'), 'ERR_LIBIPC_INVALID_NAME'],
    ['spawnRegister unknown launcher', () => node.spawnRegister('nope', 'x'), 'ERR_LIBIPC_NOT_FOUND'],
    ['spawnRegister empty launcher name', () => node.spawnRegister('', 'x'), 'ERR_LIBIPC_INVALID_NAME'],
    ['spawnRegister empty process name', () => node.spawnRegister('L', ''), 'ERR_LIBIPC_INVALID_NAME'],
    ['spawnRegister oversize process name', () => node.spawnRegister('L', 'p'.repeat(64)), 'ERR_LIBIPC_INVALID_NAME'],
    ['spawnRegister args not an array', () => node.spawnRegister('L', 'x', 'a' as never), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['spawnRegister args with a bigint', () => node.spawnRegister('L', 'x', [1n]), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['spawnRegister args with a function', () => node.spawnRegister('L', 'x', [() => 1]), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['spawnRegister args over 64 KiB', () => node.spawnRegister('L', 'x', ['z'.repeat(70_000)]), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['registerLauncher bad name', () => node.registerLauncher('', launcher), 'ERR_LIBIPC_INVALID_NAME'],
    ['registerLauncher without spawn', () => node.registerLauncher('M', {} as never), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['registerLauncher null', () => node.registerLauncher('M', null as never), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['registerLauncher stop not a function', () => node.registerLauncher('M', { spawn: async () => undefined, stop: 1 } as never), 'ERR_LIBIPC_INVALID_ARGUMENT'],
    ['registerLauncher twice', () => node.registerLauncher('L', launcher), 'ERR_LIBIPC_EXISTS'],
  ];
  for (const [what, f, code] of cases) {
    it(what, async () => {
      expect(await codeOf(f)).toBe(code);
    });
  }

  it('a cyclic args array is refused too', async () => {
    const args: unknown[] = [];
    args.push(args);
    expect(await codeOf(() => node.spawnRegister('L', 'x', args))).toBe('ERR_LIBIPC_INVALID_ARGUMENT');
  });

  it('after leave(): ERR_LIBIPC_CLOSED', async () => {
    const n = await ClusterNode.join(base());
    await n.leave();
    await n.leave(); // idempotent
    expect(await codeOf(() => n.register('x'))).toBe('ERR_LIBIPC_CLOSED');
    expect(await codeOf(() => n.spawnRegister('L', 'x'))).toBe('ERR_LIBIPC_CLOSED');
    expect(await codeOf(() => n.registerLauncher('L', launcher))).toBe('ERR_LIBIPC_CLOSED');
    expect(n.isLeader).toBe(false);
  });
});
