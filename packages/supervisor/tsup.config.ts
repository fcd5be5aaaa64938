import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// Two entry points: the core, and @libipc/supervisor/sqlite (which alone needs better-sqlite3).
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/sqlite.ts'] });
