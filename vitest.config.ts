import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// One configuration for every package: each folder under packages/ and apps/ with a test/ folder is a
// project named after its package.json, and inherits the settings below (extends: true).
const root = new URL('.', import.meta.url).pathname;
const projects = ['packages', 'apps']
  .filter((dir) => existsSync(join(root, dir)))
  .flatMap((dir) => readdirSync(join(root, dir)).map((name) => join(root, dir, name)))
  .filter((dir) => existsSync(join(dir, 'test')) && existsSync(join(dir, 'package.json')))
  .map((dir) => ({
    extends: true as const,
    test: {
      name: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name as string,
      root: dir,
      include: ['test/**/*.test.ts'],
    },
  }));

// The README examples and the packed tarballs (test/doctest): one more project, run by `pnpm test` and `pnpm doctest`.
const doctest = {
  extends: true as const,
  test: {
    name: 'doctest',
    root: join(root, 'test/doctest'),
    include: ['*.test.ts'],
    typecheck: { enabled: true, include: ['*.test-d.ts'], tsconfig: join(root, 'test/doctest/tsconfig.json') },
  },
};

export default defineConfig({
  test: {
    projects: [...projects, doctest],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    setupFiles: [join(root, 'test/setup.ts')],
    pool: 'forks',
    // CI asks for a JSON report too, to print one 'N passed, N failed' line at the end.
    reporters: process.env.LIBIPC_TEST_REPORT
      ? ['default', ['json', { outputFile: process.env.LIBIPC_TEST_REPORT }]]
      : ['default'],
  },
});
