import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const fixture = (file: string) => fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url));

/** Runs fixtures/family.py: a parent we control with a child that is a zombie or a sleeper (not ours). */
export async function family(mode: 'zombie' | 'sleeper') {
  const parent = spawn('python3', [fixture('family.py'), mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => parent.once('exit', () => r()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: parent.stdout! }).once('line', resolve);
    parent.once('exit', () => reject(new Error('family.py exited early')));
  });
  return {
    pid: Number(line),
    /** Tells the parent to kill (if needed) and reap its child, then waits for the parent to exit. */
    async release() {
      parent.stdin!.end('\n');
      await exited;
    },
  };
}
