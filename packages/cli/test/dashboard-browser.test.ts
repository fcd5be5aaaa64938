// `libipc dashboard` in a real browser (Debian's headless Chromium): a ServiceGroup in a child process and a
// `libipc run --store`; the page follows a SIGKILLed primary's failover live, and restarts a supervisor
// service only with the token.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shmObjects, spawnNode, uniqueName, zombieChildren } from '../../../test/helpers.js';
import { browserProfiles, launch } from './browser.js';
import { type RunningDashboard, startDashboard } from './dashboard-support.js';
import { FIXTURES, cli, libipc, running, start, tempDir } from './support.js';

const OUTPUT = new URL('../test-output/', import.meta.url).pathname;
const dir = tempDir();
const seen = new Set<number>();
afterAll(() => {
  for (const pid of seen) if (running(pid)) process.kill(pid, 'SIGKILL');
});

let browser: Browser;
beforeAll(async () => {
  browser = await launch();
}, 15 * 60_000);
afterAll(async () => {
  await browser?.close();
  expect(browserProfiles()).toEqual([]);
});

async function servicePid(env: Record<string, string>, store: string, name: string): Promise<number> {
  const r = await cli(['ps', '--json', '--store', store], env);
  expect(r.code, r.stderr).toBe(0);
  const row = (JSON.parse(r.stdout) as Array<{ name: string; pid: number | null; state: string }>).find((x) => x.name === name)!;
  expect(row.state).toBe('running');
  seen.add(row.pid!);
  return row.pid!;
}

describe('libipc dashboard in a browser', () => {
  it('shows the primary, follows a failover live, and restarts a service only with the token', async () => {
    const domain = uniqueName('dash');
    const rt = join(dir, 'rt');
    mkdirSync(rt);
    const env = { LIBIPC_RUNTIME_DIR: rt };
    const store = join(dir, 'services.db');
    const host = spawnNode(`${FIXTURES}group-host.mjs`, [domain, 'grp'], {}, [], { underReaper: true });
    const run = start(libipc('run', `${FIXTURES}dashboard.yaml`, '--store', store), { env });
    let dashboard: RunningDashboard | undefined;
    let page: Page | undefined;
    try {
      const first = await host.line('primary ');
      const [, primary, primaryPid] = /^primary (\S+) (\d+)/.exec(first)!;
      seen.add(Number(primaryPid));
      await run.waitFor('all 2 service(s) started');
      // No --token: the dashboard makes one and prints it.
      dashboard = await startDashboard(['--store', store, '--domain', domain], env);
      expect(dashboard.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(dashboard.token.length).toBeGreaterThanOrEqual(32);

      page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(dashboard.url);
      await page.locator('#link[data-state=live]').waitFor();
      const card = page.locator(`[data-group="${domain}/grp"]`);
      await expect.poll(() => card.locator('[data-field=primary]').textContent(), { timeout: 10_000 }).toBe(primary);
      await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));

      // SIGKILL of the primary: the new one and the failover show within a second, pushed (no reload).
      const other = primary === 'grp.0' ? 'grp.1' : 'grp.0';
      const killedAt = Date.now();
      process.kill(Number(primaryPid), 'SIGKILL');
      await card.locator('[data-field=primary]', { hasText: other }).waitFor({ timeout: 5_000 });
      const tookMs = Date.now() - killedAt;
      expect(tookMs, 'failover shown on the page').toBeLessThan(1000);
      await expect.poll(() => card.locator('[data-field=failover]').textContent(), { timeout: 2_000 }).toContain(`${primary} → ${other}`);
      expect(await card.getAttribute('data-epoch')).toBe('2');
      expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
      await page.locator('#events li[data-event=failover]').first().waitFor({ timeout: 2_000 });

      // Without the token the buttons are disabled, and the server refuses the request anyway (403): nothing restarts.
      const web = page.locator('tr[data-service=web]');
      const before = await servicePid(env, store, 'web');
      await expect.poll(() => web.locator('[data-field=pid]').textContent(), { timeout: 5_000 }).toBe(String(before));
      expect(await web.locator('button[data-action=restart]').isDisabled()).toBe(true);
      const refused = await page.evaluate(async (url) => (await fetch(url, { method: 'POST', credentials: 'omit' })).status, `/api/stores/${await web.getAttribute('data-store')}/services/web/restart`);
      expect(refused).toBe(403);
      expect(await servicePid(env, store, 'web')).toBe(before);
      // Both services are in one store: its name shows in the run column.
      expect(await web.locator('td.store').textContent()).toBe('services');

      // With the token (typed into the page): restarted, and the page shows the new pid without a reload.
      await page.locator('#token').fill(dashboard.token);
      const done = page.waitForResponse((r) => r.url().endsWith('/services/web/restart'));
      await web.locator('button[data-action=restart]').click();
      expect((await done).status()).toBe(200);
      const after = await servicePid(env, store, 'web');
      expect(after).not.toBe(before);
      await web.locator('[data-field=pid]', { hasText: String(after) }).waitFor({ timeout: 5_000 });
      await run.waitFor(/dashboard asks: restart web/);

      // Stop, then Start: the button follows the state.
      const stopped = page.waitForResponse((r) => r.url().endsWith('/services/web/stop'));
      await web.locator('button[data-action=stop]').click();
      expect((await stopped).status()).toBe(200);
      await web.locator('[data-field=state]', { hasText: 'stopped' }).waitFor({ timeout: 5_000 });
      const started = page.waitForResponse((r) => r.url().endsWith('/services/web/start'));
      await web.locator('button[data-action=start]').click();
      expect((await started).status()).toBe(200);
      await web.locator('[data-field=state]', { hasText: 'running' }).waitFor({ timeout: 5_000 });
      expect(await servicePid(env, store, 'web')).not.toBe(after);

      // Stop db says before and after that it stops web too; Start db offers web back and starts it.
      const db = page.locator('tr[data-service=db]');
      expect(await db.locator('button[data-action=stop]').getAttribute('title')).toBe('stop db (also stops web)');
      const stopDb = page.waitForResponse((r) => r.url().endsWith('/services/db/stop'));
      await db.locator('button[data-action=stop]').click();
      await page.locator('#notice', { hasText: 'stop db: also stops web…' }).waitFor({ timeout: 2_000 }).catch(() => undefined);
      expect((await stopDb).status()).toBe(200);
      await page.locator('#notice.ok', { hasText: 'stop db: done (also stopped web)' }).waitFor({ timeout: 5_000 });
      await web.locator('[data-field=state]', { hasText: 'stopped' }).waitFor({ timeout: 5_000 });
      await db.locator('button[data-action=start]', { hasText: 'Start…' }).waitFor({ timeout: 5_000 });
      expect(await db.locator('button[data-action=start]').getAttribute('title')).toBe('start db (also starts web)');
      const webBack = page.waitForResponse((r) => r.url().endsWith('/services/web/start'));
      await db.locator('button[data-action=start]').click();
      expect((await webBack).status()).toBe(200);
      await page.locator('#notice.ok', { hasText: 'start db: done (also started web)' }).waitFor({ timeout: 5_000 });
      await web.locator('[data-field=state]', { hasText: 'running' }).waitFor({ timeout: 5_000 });

      // A tablet's width: nothing overflows the page.
      await page.setViewportSize({ width: 768, height: 1000 });
      await expect.poll(() => page!.evaluate<number>('document.documentElement.scrollWidth'), { timeout: 2_000 }).toBeLessThanOrEqual(768);
      expect(await page.evaluate<boolean>("(() => { const t = document.querySelector('#services'); return t.scrollWidth <= t.parentElement.clientWidth; })()")).toBe(true);

      await page.locator('#events li[data-event=restart]').first().waitFor();
      mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: join(OUTPUT, 'dashboard.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await page?.close();
      if (dashboard) expect(await dashboard.stop()).toBe(0);
      run.child.kill('SIGINT');
      await host.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
    expect(shmObjects(domain)).toEqual([]);
    expect(zombieChildren()).toEqual([]);
  });
});
