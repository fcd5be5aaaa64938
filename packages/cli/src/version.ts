import { createRequire } from 'node:module';

/** This package's version, from its package.json (found from dist/ and from src/ alike). */
export const version: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
