// C++ test peers: compiled by the tests themselves with plain `g++ -std=c++17 -pthread` against the public headers
// of @libipc/shm, @libipc/typed-channel, @libipc/registry and @libipc/group (found as a user finds them: require('<pkg>/include').include_dir), no
// Node headers. Tests skip with a one-line reason when g++ is missing.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const root = new URL('..', import.meta.url).pathname;

/** Why C++ tests cannot run here, or undefined when g++ is available. */
export const noCompiler: string | undefined = (() => {
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'g++ is not installed: the C++ client tests need it';
  }
})();

/** The include dirs of the public C++ headers, resolved the way the README tells users to. */
export function includeDirs(): string[] {
  return ['shm', 'typed-channel', 'registry', 'group'].map((pkg) => {
    // Each package resolves its own name (a self-reference through its exports map), as an installed one would.
    const req = createRequire(join(root, `packages/${pkg}/package.json`));
    const dir = (req(`@libipc/${pkg}/include`) as { include_dir: string }).include_dir;
    return resolve(process.cwd(), dir);
  });
}

/** Compiles one C++ source into a temporary directory; returns the binary and a remove() for afterAll. */
export function compileCpp(source: string, extra: string[] = []): { bin: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'libipc-cpp-'));
  const bin = join(dir, basename(source).replace(/\.cc$/, ''));
  const includes = includeDirs().flatMap((d) => ['-I', d]);
  execFileSync('g++', ['-std=c++17', '-pthread', '-O1', '-Wall', '-Wextra', '-Werror', ...includes, source, '-o', bin, ...extra], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // Under .ci/sanitize the compiler itself need not run with libasan preloaded (the peers do).
    env: { ...process.env, LD_PRELOAD: '' },
  });
  return { bin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CppChild {
  child: ChildProcess;
  pid: number;
  lines: string[];
  /** The first stdout line starting with `prefix` (already printed or to come). */
  line(prefix: string, timeoutMs?: number): Promise<string>;
  /** Writes a line to its stdin. */
  tell(line: string): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a compiled peer with piped stdin and stdout (stdout read line by line). */
export function spawnCpp(bin: string, args: string[]): CppChild {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<{ prefix: string; resolve: (l: string) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of [...waiters]) {
      if (l.startsWith(w.prefix)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal })) as CppChild['exited'];
  return {
    child,
    pid: child.pid!,
    lines,
    line(prefix, timeoutMs = 30_000) {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no line starting ${prefix} within ${timeoutMs} ms; got: ${lines.join(' | ')}`)), timeoutMs);
        waiters.push({ prefix, resolve: (l) => (clearTimeout(timer), res(l)) });
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          rej(new Error(`C++ peer exited (${code ?? signal}) before printing ${prefix}; got: ${lines.join(' | ')}`));
        });
      });
    },
    tell(line) {
      child.stdin!.write(`${line}\n`);
    },
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Message i of length n as the C++ peers make it: byte j = (i * 7 + j * 31) & 255. */
export function pattern(i: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let j = 0; j < n; j++) b[j] = (i * 7 + j * 31) & 255;
  return b;
}

/** FNV-1a (32-bit), as the C++ peers print it. */
export function fnv1a(b: Uint8Array): number {
  let h = 2166136261;
  for (let j = 0; j < b.length; j++) h = Math.imul(h ^ b[j]!, 16777619) >>> 0;
  return h >>> 0;
}
