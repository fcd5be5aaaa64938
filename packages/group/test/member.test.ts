import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '@libipc/registry';
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

  it('refuses bad input with a stable code', () => {
    expect(() => GroupMember.join({ controlChannel: 'c', replyChannel: 'r' })).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }),
    );
    expect(() => GroupMember.join({ domain: 'd', service: 'bad name', id: 0, controlChannel: 'c', replyChannel: 'r' })).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_NAME' }),
    );
    expect(() => GroupMember.join({ domain: 'd', service: 's', id: 0, controlChannel: 'c', replyChannel: 'r', heartbeatMs: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }),
    );
  });
});
