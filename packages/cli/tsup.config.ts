import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// The library face (main, loadConfig) as ESM + CJS, and the `libipc` bin as ESM only (with its shebang).
export default defineConfig([
  { ...base, entry: ['src/index.ts'] },
  { ...base, entry: { bin: 'src/bin.ts' }, format: ['esm'], dts: false, clean: false, banner: { js: '#!/usr/bin/env node' }, onSuccess: 'chmod +x dist/bin.js' },
]);
