import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '@libipc/registry';
import { SharedMemory } from '@libipc/shm';
import { GroupMember } from '../src/index.js';
import { shmObjects, uniqueName } from '../../../test/helpers.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('GroupMember', () => {
  it('registers <service>.<id>, and its first role event reaches listeners added right after join', async () => {
    const domain = uniqueName('mem');
    const registry = new ServiceRegistry(domain);
    cleanup.push(() => (registry.close(), expect(shmObjects(domain)).toEqual([])));
    // The host promoted this instance before the member read the record.
    const epoch = registry.claimPrimary('svc', 'svc.3', 0)!;
    const member = GroupMember.join({ domain, service: 'svc', id: 3, controlChannel: 'c', replyChannel: 'r', exitWithHost: false });
    cleanup.push(() => member.leave());
    const [first] = await once(member, 'role');
    expect(first).toEqual({ role: 'primary', epoch });
    expect(member.name).toBe('svc.3');
    expect(registry.find('svc.3')).toMatchObject({ controlChannel: 'c', replyChannel: 'r', pid: process.pid });
    expect(member.isPrimary()).toBe(true);

    // Fencing: another claim makes this member a standby, and it says so.
    const demoted = once(member, 'role');
    registry.claimPrimary('svc', 'svc.4', epoch);
    expect(member.isPrimary()).toBe(false);
    expect((await demoted)[0]).toEqual({ role: 'standby', epoch: epoch + 1 });
    expect(member.epoch).toBe(epoch + 1);
  });

  it('beats: its registry heartbeat stays fresh', async () => {
    const domain = uniqueName('beat');
    const registry = new ServiceRegistry(domain);
    cleanup.push(() => registry.close());
    const member = GroupMember.join({ domain, service: 'svc', id: 0, controlChannel: 'c', replyChannel: 'r', heartbeatMs: 10 });
    cleanup.push(() => member.leave());
    await once(member, 'role');
    const first = registry.find('svc.0')!.heartbeatAt!.getTime();
    await new Promise((r) => setTimeout(r, 100));
    expect(registry.find('svc.0')!.heartbeatAt!.getTime()).toBeGreaterThan(first);
    member.leave();
    expect(registry.find('svc.0')).toBeUndefined();
  });

  it('a corrupt group record is reported by an event and the member keeps running; the registry says ERR_LIBIPC_INCOMPATIBLE', async () => {
    const domain = uniqueName('cor');
    const registry = new ServiceRegistry(domain);
    cleanup.push(() => registry.close());
    registry.claimPrimary('svc', 'svc.0', 0);
    const member = GroupMember.join({ domain, service: 'svc', id: 0, controlChannel: 'c', replyChannel: 'r', heartbeatMs: 5, exitWithHost: false });
    cleanup.push(() => member.leave());
    await once(member, 'role');
    // Another mapping rewrites the record's "current copy" index (0 or 1) with garbage.
    const raw = SharedMemory.open(domain, { kind: 'registry' });
    cleanup.push(() => raw.close());
    const bytes = Buffer.from(raw.buffer);
    const nameAt = bytes.indexOf(Buffer.from('svc\0\0\0\0'));
    expect(nameAt).toBeGreaterThan(0);
    const current = bytes.readUInt32LE(nameAt - 4);
    bytes.writeUInt32LE(0xdeadbeef, nameAt - 4);
    const [err] = await once(member, 'registry-error');
    expect(err).toMatchObject({ code: 'ERR_LIBIPC_INCOMPATIBLE' });
    expect(() => registry.groupState('svc')).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    expect(() => member.isPrimary()).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    // Still beating: the timer survived the error.
    const before = registry.find('svc.0')!.heartbeatAt!.getTime();
    await once(member, 'registry-error');
    expect(registry.find('svc.0')!.heartbeatAt!.getTime()).toBeGreaterThanOrEqual(before);
    bytes.writeUInt32LE(current, nameAt - 4); // repaired: the member reads its role again
    expect(member.isPrimary()).toBe(true);
  });

  it('refuses bad input with a stable code', () => {
    expect(() => GroupMember.join({ controlChannel: 'c', replyChannel: 'r' })).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }),
    );
    expect(() => GroupMember.join({ domain: 'd', service: 'bad name', id: 0, controlChannel: 'c', replyChannel: 'r' })).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }),
    );
    for (const heartbeatMs of [0, 3e9, NaN, '5' as unknown as number]) {
      expect(() => GroupMember.join({ domain: 'd', service: 's', id: 0, controlChannel: 'c', replyChannel: 'r', heartbeatMs })).toThrow(
        expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringContaining('heartbeatMs') }),
      );
    }
    expect(() => GroupMember.join({ domain: 'd', service: 's', id: 0, controlChannel: 'c', replyChannel: 'r', hearbeatMs: 5 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: expect.stringContaining("did you mean 'heartbeatMs'") }),
    );
  });
});
