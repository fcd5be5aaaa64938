import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// The library face (main, loadConfig) as ESM + CJS, the `libipc` bin as ESM only (with its shebang).
// zod is bundled: imported as a package it opens ~100 files at once (its locales; yaml's CommonJS loads one by one),
// and the command must start under ulimit -n 64 (as in @libipc/shm and @libipc/supervisor).
const bundled = ['zod'];
export default defineConfig([
  { ...base, entry: ['src/index.ts'], noExternal: bundled },
  // The preload of PM2 apps with wait_ready (pm2-ready.ts): CommonJS, for `node --require`.
  { ...base, entry: { 'pm2-ready': 'src/pm2-ready.ts' }, format: ['cjs'], dts: false, clean: false, sourcemap: false },
  {
    ...base,
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    dts: false,
    clean: false,
    noExternal: bundled,
    banner: { js: '#!/usr/bin/env node' },
    onSuccess: 'chmod +x dist/bin.js',
  },
]);
