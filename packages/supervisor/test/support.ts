// Shared by this package's tests: fixtures, temporary folders, managers shut down after each test, and
// waiting for events (never sleeping).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { liveChildren } from '../../../test/helpers.js';
import { Manager, type ManagerOptions, type ServiceSpec, type ServiceStatus } from '../src/index.js';

export const node = process.execPath;
export const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
export const SERVICE = fixture('service.mjs');

const managers = new Set<Manager>();
const dirs = new Set<string>();
const cleanups: Array<() => unknown> = [];

/** A Manager that is shut down after the test (whatever the test did). */
export function manager(opts?: ManagerOptions): Manager {
  const m = new Manager(opts);
  managers.add(m);
  return m;
}

/** A temporary folder removed after the test. */
export function tempDir(prefix = 'libipc-sup-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** A node service spec running the test service fixture. */
export function svc(name: string, extra: Partial<ServiceSpec> & { flags?: string[] } = {}): ServiceSpec {
  const { flags = ['--ready'], ...rest } = extra;
  return { name, command: node, args: [SERVICE, ...flags], readiness: 'ready', logs: 'ignore', ...rest };
}

/** Resolves with the first event `name` whose payload satisfies `test` (subscribe before the action). */
export function nextEvent<T = unknown>(m: Manager, name: string, test: (e: T) => boolean = () => true, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      m.off(name, on);
      reject(new Error(`no '${name}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (e: T) => {
      if (!test(e)) return;
      clearTimeout(timer);
      m.off(name, on);
      resolve(e);
    };
    m.on(name, on);
  });
}

/** Resolves once `check()` holds, re-checked after every 'state' and 'history' event of the manager. */
export function until(m: Manager, check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(m.statusAll().map(brief))}`));
    }, timeoutMs);
    const off = () => {
      m.off('state', on);
      m.off('history', on);
    };
    const on = () => {
      if (!check()) return;
      clearTimeout(timer);
      off();
      resolve();
    };
    m.on('state', on);
    m.on('history', on);
  });
}

export function brief(s: ServiceStatus): string {
  return `${s.name}:${s.state}${s.pid ? `(${s.pid})` : ''} r=${s.restarts}${s.reason ? ` ${s.reason}` : ''}`;
}

/** True when the process exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

afterEach(async () => {
  await Promise.all([...managers].map((m) => m.shutdown(1000).catch(() => {})));
  managers.clear();
  for (const fn of cleanups.splice(0).reverse()) await fn();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
  expect(liveChildren(), 'live children left by the test').toEqual([]);
});

/** Live processes started by this test process for `service` (found by the environment contract). */
export function processesOf(service: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${d}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (env.includes(`\0LIBIPC_SERVICE=${service}\0`) && env.includes(`\0LIBIPC_PARENT_PID=${process.pid}\0`) && pidAlive(Number(d))) out.push(Number(d));
  }
  return out;
}

export { freePort } from '../../../test/helpers.js';
