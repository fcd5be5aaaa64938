import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// zod and fastest-levenshtein are bundled: an ESM import of zod opens ~100 files at once (its locales), which
// fails at a low fd limit (ulimit -n 64) before any of our code runs.
export default defineConfig({ ...base, noExternal: ['zod', 'fastest-levenshtein'] });
