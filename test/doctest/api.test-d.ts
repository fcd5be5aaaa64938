// The types each README promises, checked against the built declarations (dist/*.d.ts, what the tarballs
// ship) by `vitest --typecheck` (tsc): a README table and the .d.ts cannot drift apart silently.
import type { Readable, Writable } from 'node:stream';
import { ClusterNode, createPlacement } from '@libipc/cluster';
import { GroupMember, ServiceGroup, type FailoverEvent, type ManagedInstance } from '@libipc/group';
import {
  type ExitStatus,
  ManagedProcess,
  type ProcessHandle,
  TRANSITIONS,
  forceKill,
  ready,
  requestShutdown,
  resolveExecutable,
  shutdown,
  spawn,
  spawnAndWait,
  waitForExit,
  waitForReady,
} from '@libipc/process';
import { type ServiceEntry, ServiceRegistry } from '@libipc/registry';
import {
  LaggedError,
  LibipcError,
  RobustMutex,
  SharedMemory,
  isAlive,
  processIdentity,
  validateName,
  wait,
  waitBackend,
  waitSync,
  wake,
  watchExit,
} from '@libipc/shm';
import { JsonFileStore, Manager, type ServiceStatus } from '@libipc/supervisor';
import { SqliteStore } from '@libipc/supervisor/sqlite';
import { Channel, Route, TypedChannel } from '@libipc/typed-channel';
import { describe, expectTypeOf, test } from 'vitest';

describe('@libipc/shm', () => {
  test('segments', () => {
    expectTypeOf(SharedMemory.create).returns.toEqualTypeOf<SharedMemory>();
    expectTypeOf(SharedMemory.open).returns.toEqualTypeOf<SharedMemory>();
    expectTypeOf(SharedMemory.openOrCreate).returns.toEqualTypeOf<SharedMemory>();
    expectTypeOf<SharedMemory['buffer']>().toEqualTypeOf<ArrayBuffer>();
    expectTypeOf<SharedMemory['close']>().returns.toEqualTypeOf<void>();
    expectTypeOf(SharedMemory.unlink).parameter(0).toEqualTypeOf<string>();
    expectTypeOf(SharedMemory.exists).returns.toEqualTypeOf<boolean>();
  });

  test('wait / wake', () => {
    expectTypeOf(wait).returns.toEqualTypeOf<Promise<'ok' | 'not-equal' | 'timed-out'>>();
    expectTypeOf(waitSync).returns.toEqualTypeOf<'ok' | 'not-equal' | 'timed-out'>();
    expectTypeOf(wake).returns.toEqualTypeOf<number>();
    expectTypeOf(waitBackend).returns.toEqualTypeOf<'io_uring' | 'threads'>();
  });

  test('RobustMutex', () => {
    expectTypeOf(RobustMutex.init).returns.toEqualTypeOf<RobustMutex>();
    expectTypeOf<Awaited<ReturnType<RobustMutex['lock']>>>().toHaveProperty('ownerDied').toEqualTypeOf<boolean>();
    expectTypeOf<ReturnType<RobustMutex['tryLock']>>().toMatchTypeOf<{ acquired: boolean; ownerDied: boolean }>();
    expectTypeOf<RobustMutex['unlock']>().returns.toEqualTypeOf<void>();
  });

  test('identity and exit', () => {
    expectTypeOf(processIdentity).returns.toEqualTypeOf<{ pid: number; startTime: bigint } | undefined>();
    expectTypeOf(isAlive).returns.toEqualTypeOf<boolean>();
    expectTypeOf(watchExit).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(validateName).toBeCallableWith('audio_compute.0');
  });

  test('errors carry a code', () => {
    expectTypeOf<LibipcError['code']>().toEqualTypeOf<string>();
    expectTypeOf<LaggedError['missed']>().toEqualTypeOf<number>();
    expectTypeOf<LaggedError>().toMatchTypeOf<LibipcError>();
  });
});

describe('@libipc/registry', () => {
  test('ServiceRegistry', () => {
    const r = new ServiceRegistry('audio');
    expectTypeOf(r.domain).toEqualTypeOf<string>();
    expectTypeOf(r.capacity).toEqualTypeOf<number>();
    expectTypeOf(r.register).returns.toEqualTypeOf<boolean>();
    expectTypeOf(r.unregister).returns.toEqualTypeOf<boolean>();
    expectTypeOf(r.find).returns.toEqualTypeOf<ServiceEntry | undefined>();
    expectTypeOf(r.findAll).returns.toEqualTypeOf<ServiceEntry[]>();
    expectTypeOf(r.list).returns.toEqualTypeOf<ServiceEntry[]>();
    expectTypeOf(r.gc).returns.toEqualTypeOf<number>();
    expectTypeOf(r.heartbeat).returns.toEqualTypeOf<void>();
    expectTypeOf(r.groupState).returns.toMatchTypeOf<{ epoch: number; primary?: string }>();
    expectTypeOf(r.claimPrimary).returns.toEqualTypeOf<number | undefined>();
    expectTypeOf(r.waitFor).returns.toEqualTypeOf<Promise<ServiceEntry | undefined>>();
    expectTypeOf(r.watch).returns.toMatchTypeOf<AsyncIterable<{ type: 'registered' | 'unregistered' | 'removed-dead'; entry: ServiceEntry }>>();
    expectTypeOf(r.close).returns.toEqualTypeOf<void>();
  });

  test('ServiceEntry', () => {
    expectTypeOf<ServiceEntry>().toMatchTypeOf<{
      name: string;
      controlChannel: string;
      replyChannel: string;
      pid: number;
      startTime: bigint;
      registeredAt: Date;
      heartbeatAt?: Date;
      meta?: string;
    }>();
  });
});

describe('@libipc/typed-channel', () => {
  test('Channel and Route', () => {
    for (const c of [new Channel('x'), new Route('x')]) {
      expectTypeOf(c.send).returns.toEqualTypeOf<Promise<boolean>>();
      expectTypeOf(c.send).parameter(0).toEqualTypeOf<Uint8Array | string>();
      expectTypeOf(c.trySend).returns.toEqualTypeOf<boolean>();
      expectTypeOf(c.recv).returns.toEqualTypeOf<Promise<Uint8Array | undefined>>();
      expectTypeOf(c.tryRecv).returns.toEqualTypeOf<Uint8Array | undefined>();
      expectTypeOf(c.recvCount).toEqualTypeOf<number>();
      expectTypeOf(c.waitForRecv).returns.toEqualTypeOf<Promise<boolean>>();
      expectTypeOf(c).toMatchTypeOf<AsyncIterable<Uint8Array>>();
      expectTypeOf(c.close).returns.toEqualTypeOf<void>();
    }
    expectTypeOf(Channel.clearStorage).returns.toEqualTypeOf<void>();
  });

  test('TypedChannel gives the table class back', () => {
    class Sample {
      id(): number {
        return 0;
      }
      static getRootAsSample(): Sample {
        return new Sample();
      }
    }
    const t = new TypedChannel('x', Sample as never) as unknown as TypedChannel<Sample>;
    expectTypeOf(t.recv).returns.toEqualTypeOf<Promise<Sample | undefined>>();
    expectTypeOf(t.identifier).toEqualTypeOf<string>();
  });
});

describe('@libipc/process', () => {
  test('ProcessHandle, as the README lists it (stdio streams too)', () => {
    expectTypeOf(spawn).returns.toEqualTypeOf<ProcessHandle>();
    expectTypeOf<ProcessHandle['pid']>().toEqualTypeOf<number>();
    expectTypeOf<ProcessHandle['name']>().toEqualTypeOf<string>();
    expectTypeOf<ProcessHandle['executable']>().toEqualTypeOf<string>();
    expectTypeOf<ProcessHandle['isAlive']>().returns.toEqualTypeOf<boolean>();
    expectTypeOf<ProcessHandle['exit']>().toEqualTypeOf<Promise<ExitStatus>>();
    expectTypeOf<ProcessHandle['stdin']>().toEqualTypeOf<Writable | null>();
    expectTypeOf<ProcessHandle['stdout']>().toEqualTypeOf<Readable | null>();
    expectTypeOf<ProcessHandle['stderr']>().toEqualTypeOf<Readable | null>();
  });

  test('functions', () => {
    expectTypeOf(requestShutdown).returns.toEqualTypeOf<boolean>();
    expectTypeOf(forceKill).returns.toEqualTypeOf<boolean>();
    expectTypeOf(waitForExit).returns.toEqualTypeOf<Promise<ExitStatus>>();
    expectTypeOf(shutdown).returns.toEqualTypeOf<Promise<ExitStatus>>();
    expectTypeOf(waitForReady).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(ready).returns.toEqualTypeOf<void>();
    expectTypeOf(spawnAndWait).returns.toEqualTypeOf<Promise<ProcessHandle>>();
    expectTypeOf(resolveExecutable).returns.toEqualTypeOf<string>();
    expectTypeOf<ExitStatus>().toMatchTypeOf<{
      reason: 'exited' | 'signaled' | 'timeout';
      exited: boolean;
      exitCode: number | null;
      signaled: boolean;
      signal: NodeJS.Signals | string | null;
    }>();
  });

  test('ManagedProcess', () => {
    const m = new ManagedProcess({ name: 'w', command: 'node' });
    expectTypeOf(m.start).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.stop).returns.toEqualTypeOf<Promise<ExitStatus>>();
    expectTypeOf(m.restart).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.restarts).toEqualTypeOf<number>();
    expectTypeOf(m.pid).toEqualTypeOf<number | undefined>();
    expectTypeOf(m.status()).toHaveProperty('state');
    expectTypeOf(TRANSITIONS).not.toBeAny();
  });
});

describe('@libipc/group', () => {
  test('ServiceGroup', () => {
    const g = new ServiceGroup(new ServiceRegistry('a'), { serviceName: 's', executable: 'node' });
    expectTypeOf(g.start).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(g.stop).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(g.primary).returns.toEqualTypeOf<ManagedInstance | undefined>();
    expectTypeOf(g.instances).returns.toEqualTypeOf<ManagedInstance[]>();
    expectTypeOf(g.aliveCount).returns.toEqualTypeOf<number>();
    expectTypeOf(g.forceFailover).returns.toEqualTypeOf<Promise<boolean>>();
    expectTypeOf(g.healthCheck).returns.toEqualTypeOf<boolean>(); // a boolean, not a Promise
    expectTypeOf<FailoverEvent>().toMatchTypeOf<{ previous?: string; primary: string; epoch: number; detectedInMs: number }>();
  });

  test('GroupMember', () => {
    expectTypeOf(GroupMember.join).returns.toEqualTypeOf<GroupMember>();
    expectTypeOf<GroupMember['isPrimary']>().returns.toEqualTypeOf<boolean>();
    expectTypeOf<GroupMember['epoch']>().toEqualTypeOf<number>();
    expectTypeOf<GroupMember['name']>().toEqualTypeOf<string>();
    expectTypeOf<GroupMember['ready']>().returns.toEqualTypeOf<void>();
    expectTypeOf<GroupMember['leave']>().returns.toEqualTypeOf<void>();
  });
});

describe('@libipc/supervisor', () => {
  test('Manager', () => {
    const m = new Manager();
    expectTypeOf(m.start).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.startN).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.stop).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.stopAll).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.restart).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.remove).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.status).returns.toEqualTypeOf<ServiceStatus>();
    expectTypeOf(m.statusAll).returns.toEqualTypeOf<ServiceStatus[]>();
    expectTypeOf(m.count).returns.toEqualTypeOf<number>();
    expectTypeOf(m.reconcile).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.shutdown).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(m.loaded).toEqualTypeOf<Promise<void>>();
    expectTypeOf<ServiceStatus>().toMatchTypeOf<{ name: string; state: string; restarts: number }>();
    expectTypeOf(JsonFileStore).toBeConstructibleWith('/tmp/x.json');
    expectTypeOf(SqliteStore).toBeConstructibleWith('/tmp/x.db');
  });
});

describe('@libipc/cluster', () => {
  test('ClusterNode', () => {
    expectTypeOf(ClusterNode.join).returns.toEqualTypeOf<Promise<ClusterNode>>();
    expectTypeOf<ClusterNode['spawnRegister']>().returns.toEqualTypeOf<Promise<{ node: string }>>();
    expectTypeOf<ClusterNode['register']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<ClusterNode['unregister']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<ClusterNode['locate']>().returns.toEqualTypeOf<string | undefined>();
    expectTypeOf<ClusterNode['isLeader']>().toEqualTypeOf<boolean>();
    expectTypeOf<ClusterNode['leave']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<ReturnType<ClusterNode['addressBook']>['getAvailableNodes']>().returns.toEqualTypeOf<string[]>();
    expectTypeOf(createPlacement).returns.resolves.toHaveProperty('owner'); // async: xxhash-wasm loads first
  });
});
