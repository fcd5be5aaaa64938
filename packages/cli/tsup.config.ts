import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// The library face (main, loadConfig) as ESM + CJS, the `libipc` bin as ESM only (with its shebang).
export default defineConfig([
  { ...base, entry: ['src/index.ts'] },
  // The preload of PM2 apps with wait_ready (pm2-ready.ts): CommonJS, for `node --require`.
  { ...base, entry: { 'pm2-ready': 'src/pm2-ready.ts' }, format: ['cjs'], dts: false, clean: false, sourcemap: false },
  { ...base, entry: { bin: 'src/bin.ts' }, format: ['esm'], dts: false, clean: false, banner: { js: '#!/usr/bin/env node' }, onSuccess: 'chmod +x dist/bin.js' },
]);
