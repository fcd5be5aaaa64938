import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

/** Processes still alive that a manager in process `pid` started (LIBIPC_PARENT_PID of the contract). */
function startedBy(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/environ`, 'latin1').includes(`\0LIBIPC_PARENT_PID=${pid}\0`) && !/\) [ZX] /.test(readFileSync(`/proc/${d}/stat`, 'latin1'));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('README', () => {
  it('its example is examples/quick-start.mjs, which runs, exits 0 and leaves no process behind', async () => {
    const readme = readFileSync(`${root}README.md`, 'utf8');
    const block = /## Example\n[\s\S]*?```js[^\n]*\n([\s\S]*?)```/.exec(readme)![1]!;
    const file = readFileSync(`${root}examples/quick-start.mjs`, 'utf8');
    expect(file.endsWith(block)).toBe(true);
    expect(block.trim().split('\n').length).toBeLessThanOrEqual(13);
    const out = await new Promise<{ code: number | null; stdout: string; pid: number }>((resolve) => {
      const c = execFile(process.execPath, [`${root}examples/quick-start.mjs`], { cwd: root, timeout: 30_000 }, (_err, stdout) =>
        resolve({ code: c.exitCode, stdout, pid: c.pid! }),
      );
    });
    expect(out.code).toBe(0);
    expect(startedBy(out.pid)).toEqual([]);
    expect(out.stdout).toMatch(/restart db/);
    expect(out.stdout.indexOf('restart api')).toBeGreaterThan(out.stdout.indexOf('restart db'));
  });
});
