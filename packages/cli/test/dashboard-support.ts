// Starting `libipc dashboard` as a user would, and reading the URL and token it prints.
import { expect } from 'vitest';
import { type Running, libipc, start } from './support.js';

export interface RunningDashboard extends Running {
  url: string;
  token: string;
  /** Ctrl-C, and its exit code. */
  stop(): Promise<number | null>;
}

export async function startDashboard(args: string[], env: Record<string, string> = {}): Promise<RunningDashboard> {
  const run = start(libipc('dashboard', ...args), { env });
  try {
    await run.waitFor(/token: \S+\n/, 20_000);
  } catch (err) {
    run.child.kill('SIGKILL');
    await run.exited;
    throw err;
  }
  const url = /libipc dashboard: (http:\/\/\S+)/.exec(run.output())![1]!;
  const token = /token: (\S+)/.exec(run.output())![1]!;
  return {
    ...run,
    url,
    token,
    async stop() {
      if (run.child.exitCode === null) run.child.kill('SIGINT');
      const code = await run.exited;
      expect(run.output()).toContain('libipc dashboard: stopped');
      return code;
    },
  };
}
