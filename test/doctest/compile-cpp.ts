// The C++ README blocks (`cpp runnable file=NAME.cc`): compiled as a user would, with plain g++ and the include
// dirs the installed tarballs give (require('<pkg>/include').include_dir), into NAME next to the source, before the
// README's js blocks start the binary.
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { type Example, cppBinary } from './markdown.js';
import { run } from './scratch.js';

/** The include dirs of every installed package that exports './include', resolved from the project. */
export function installedIncludeDirs(projectDir: string, pkgs: Array<{ name: string; json: { exports?: Record<string, unknown> } }>): string[] {
  const req = createRequire(join(projectDir, 'package.json'));
  return pkgs
    .filter((p) => p.json.exports?.['./include'] !== undefined)
    .map((p) => resolve(process.cwd(), (req(`${p.name}/include`) as { include_dir: string }).include_dir));
}

/** The g++ command line of one block (run in the block's folder). */
export function cppCompileArgs(ex: Example, includeDirs: string[]): string[] {
  return ['-std=c++17', '-pthread', ...includeDirs.flatMap((d) => ['-I', d]), ex.file, '-o', cppBinary(ex)];
}

/** Compiles the C++ blocks of one README in its folder, one after another; rejects with g++'s output. */
export async function compileCppBlocks(list: Example[], dir: string, includeDirs: string[]): Promise<void> {
  for (const ex of list.filter((e) => e.lang === 'cpp')) {
    await run('g++', cppCompileArgs(ex, includeDirs), {
      cwd: dir,
      timeoutMs: ex.timeoutMs,
      // Under .ci/sanitize the compiler itself need not run with libasan preloaded.
      env: { ...process.env, LD_PRELOAD: '' },
    }).catch((err: Error) => {
      throw new Error(`${ex.readme}:${ex.line - 1} (${ex.file}) did not compile: ${err.message}`);
    });
  }
}
