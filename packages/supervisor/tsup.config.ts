import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// Two entry points: the core, and @libipc/supervisor/sqlite (which alone needs better-sqlite3). zod is bundled, as
// in @libipc/shm: an ESM import of zod opens ~100 files at once (its locales), too many under ulimit -n 64.
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/sqlite.ts'], noExternal: ['zod'] });
