import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '@libipc/shm';

export interface StaticFile {
  body: Buffer;
  type: string;
}

/** The package's own folder (where static/ ships), found from this module in src/ or in dist/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === '@libipc/cli') return dir;
    const up = dirname(dir);
    if (up === dir) throw new NotFoundError('cannot find the @libipc/cli package folder (its static/ files); reinstall @libipc/cli');
    dir = up;
  }
}

/**
 * The page and what it loads, by URL path: our static/dashboard files, and uPlot (the time line's chart)
 * straight from its npm package. A fixed list read once at start: no path from a request ever reaches the file system.
 */
export function loadStaticFiles(): Map<string, StaticFile> {
  const root = join(packageRoot(), 'static', 'dashboard');
  const uplot = createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js');
  const files: Array<[string, string, string]> = [
    ['/', join(root, 'index.html'), 'text/html; charset=utf-8'],
    ['/app.js', join(root, 'app.js'), 'text/javascript; charset=utf-8'],
    ['/timeline.js', join(root, 'timeline.js'), 'text/javascript; charset=utf-8'],
    ['/style.css', join(root, 'style.css'), 'text/css; charset=utf-8'],
    ['/vendor/uPlot.esm.js', uplot, 'text/javascript; charset=utf-8'],
    ['/vendor/uPlot.min.css', join(dirname(uplot), 'uPlot.min.css'), 'text/css; charset=utf-8'],
  ];
  return new Map(files.map(([url, path, type]) => [url, { body: readFileSync(path), type }]));
}
