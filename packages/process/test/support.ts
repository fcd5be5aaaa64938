// Shared by this package's tests: fixtures, and cleanup of every child a test started.
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { afterEach, expect } from 'vitest';
import { forceKill, type ManagedProcess, type ProcessHandle } from '../src/index.js';
import { liveChildren } from '../../../test/helpers.js';

export const node = process.execPath;
export const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const handles = new Set<ProcessHandle>();
const managed = new Set<ManagedProcess>();

/** Remember a handle so that afterEach kills and reaps it if the test did not. */
export function track<T extends ProcessHandle>(h: T): T {
  handles.add(h);
  return h;
}

export function trackManaged<T extends ManagedProcess>(m: T): T {
  managed.add(m);
  return m;
}

/** The first stdout line of a piped child that starts with `prefix`. */
export async function lineOf(h: ProcessHandle, prefix: string): Promise<string> {
  const stdout = (h as ProcessHandle & { stdout: Readable | null }).stdout;
  if (!stdout) throw new Error('stdio must be pipe');
  const rl = createInterface({ input: stdout });
  try {
    for await (const line of rl) if (line.startsWith(prefix)) return line;
  } finally {
    rl.close();
  }
  throw new Error(`stdout ended without a line starting with ${prefix}`);
}

/** Resolves with the next 'state' event into `to` (call it before the action that causes it). */
export function stateReached(m: ManagedProcess, to: string): Promise<{ from: string; to: string; reason: string }> {
  return new Promise((resolve) => {
    const on = (t: { from: string; to: string; reason: string }) => {
      if (t.to === to) {
        m.off('state', on);
        resolve(t);
      }
    };
    m.on('state', on);
  });
}

afterEach(async () => {
  await Promise.all([...managed].map((m) => m.stop(0).catch(() => {})));
  managed.clear();
  for (const h of handles) forceKill(h);
  await Promise.all([...handles].map((h) => h.exit));
  handles.clear();
  expect(liveChildren(), 'live children left by the test').toEqual([]);
});

export { once };
