// ls, gc and watch against live and SIGKILLed processes registered in a real registry domain.
import { describe, expect, it } from 'vitest';
import { shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { FIXTURES, cli, libipc, start } from './support.js';

describe('libipc ls / gc / watch', () => {
  it('ls shows live entries and group records, marks dead ones; gc removes them and says how many', async () => {
    const domain = uniqueName('cli');
    const live = spawnNode(`${FIXTURES}register.mjs`, [domain, 'alpha']);
    const doomed = spawnNode(`${FIXTURES}register.mjs`, [domain, 'beta']);
    try {
      await Promise.all([live.line('registered'), doomed.line('registered')]);
      const before = await cli(['ls', '--domain', domain, '--json']);
      expect(before.code, before.stderr).toBe(0);
      const rows = JSON.parse(before.stdout) as Array<Record<string, unknown>>;
      const alpha = rows.find((r) => r.type === 'entry' && r.name === 'alpha')!;
      expect(alpha).toMatchObject({ domain, pid: live.child.pid, alive: true, controlChannel: 'alpha_ctrl', replyChannel: 'alpha_reply' });
      expect(rows.find((r) => r.type === 'group' && r.name === 'grp')).toMatchObject({ domain, epoch: expect.any(Number), primary: expect.any(String) });

      await doomed.kill('SIGKILL');
      const table = await cli(['ls', '--domain', domain]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(new RegExp(`beta\\s+${doomed.child.pid}\\s+dead`));
      expect(table.stdout).toMatch(new RegExp(`alpha\\s+${live.child.pid}\\s+alive`));
      // Reading did not remove the dead entry (nor join the domain): ls again still shows it.
      expect((await cli(['ls', '--domain', domain])).stdout).toMatch(/beta.*dead/);

      const gc = await cli(['gc', '--domain', domain]);
      expect(gc.code, gc.stderr).toBe(0);
      expect(gc.stdout).toMatch(new RegExp(`removed 1 dead entry from domain ${domain}`));
      const after = JSON.parse((await cli(['ls', '--domain', domain, '--json'])).stdout) as Array<Record<string, unknown>>;
      expect(after.filter((r) => r.type === 'entry').map((r) => r.name)).toEqual(['alpha']);
      // Without --domain, every domain is listed.
      expect((await cli(['ls'])).stdout).toContain(domain);
    } finally {
      await live.kill('SIGTERM');
      await doomed.kill();
    }
    expect(shmObjects(domain)).toEqual([]);
  });

  it('watch streams registrations, unregistrations and deaths as they happen', async () => {
    const domain = uniqueName('cliw');
    const watcher = start(libipc('watch', '--domain', domain));
    try {
      await watcher.waitFor(`watching ${domain}`);
      const svc = spawnNode(`${FIXTURES}register.mjs`, [domain, 'gamma']);
      await svc.line('registered');
      await watcher.waitFor(new RegExp(`${domain} registered\\s+gamma pid ${svc.child.pid}`));
      await svc.kill('SIGKILL');
      // Its death is told at once: by its exit (died), or by whoever notices the entry is dead (removed-dead).
      await watcher.waitFor(new RegExp(`(died|removed-dead)\\s+gamma pid ${svc.child.pid}`));
      const svc2 = spawnNode(`${FIXTURES}register.mjs`, [domain, 'delta']);
      await svc2.line('registered');
      await watcher.waitFor(/registered\s+delta/);
      await svc2.kill('SIGTERM');
      await watcher.waitFor(new RegExp(`unregistered\\s+delta pid ${svc2.child.pid}`));
      await cli(['gc', '--domain', domain]);
    } finally {
      watcher.child.kill('SIGINT');
      expect(await watcher.exited).toBe(0);
    }
    expect(shmObjects(domain)).toEqual([]);
  });
});
