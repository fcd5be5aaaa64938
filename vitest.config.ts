import { defineConfig } from 'vitest/config';

// One configuration for every package: each folder under packages/ and apps/ is a project named
// after its package.json, with its tests in test/.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    setupFiles: [new URL('./test/setup.ts', import.meta.url).pathname],
    pool: 'forks',
    reporters: ['default'],
  },
});
