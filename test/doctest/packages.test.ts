// What every published package owes a user who finds it on npm: metadata npm can link from, a license, and a
// README with an install line, a short runnable ES module example, a CommonJS example, its error codes and a
// link to the API reference. (That the examples run is readme-examples.test.ts's job.)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { examples, fences, links } from './markdown.js';
import { ROOT, publishedPackages } from './scratch.js';

const REPO = 'https://github.com/libipc/libipc-node';
const pkgs = publishedPackages();
const known = new Set(readdirSync(join(ROOT, 'packages')).map((d) => `@libipc/${d}`));

test('the repository has an MIT LICENSE', () => {
  const text = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  expect(text).toMatch(/^MIT License/);
  expect(text).toContain('Permission is hereby granted, free of charge');
});

describe.each(pkgs)('$name', (pkg) => {
  const readme = readFileSync(join(pkg.dir, 'README.md'), 'utf8');
  const list = examples(ROOT, `${pkg.rel}/README.md`);

  test('package.json: license, repository (with directory), homepage, bugs, keywords', () => {
    const j = pkg.json;
    expect(j.license).toBe('MIT');
    expect(j.repository).toEqual({ type: 'git', url: `git+${REPO}.git`, directory: pkg.rel });
    expect(j.homepage).toBe(`${REPO}/tree/main/${pkg.rel}#readme`);
    expect(j.bugs).toEqual({ url: `${REPO}/issues` });
    expect(Array.isArray(j.keywords) && j.keywords.length > 0, 'keywords').toBe(true);
  });

  test('LICENSE (MIT) is there and listed in files; examples/ is shipped when the README points at it', () => {
    expect(readFileSync(join(pkg.dir, 'LICENSE'), 'utf8')).toBe(readFileSync(join(ROOT, 'LICENSE'), 'utf8'));
    expect(pkg.json.files).toContain('LICENSE');
    if (/\]\(examples\//.test(readme) || /@libipc\/[a-z-]+\/examples\//.test(readme)) expect(pkg.json.files).toContain('examples');
  });

  test('README: install line', () => {
    const sh = fences(readme).filter((f) => /^(sh|bash|shell)\b/.test(f.info));
    expect(sh.some((f) => new RegExp(`npm install (-g )?(\\S+ )*${pkg.name}( |$)`, 'm').test(f.code)), `npm install ${pkg.name}`).toBe(true);
  });

  test('README: the first runnable example is a short ES module (.mjs), and says so', () => {
    const first = list.find((e) => e.lang === 'js' && !e.helper);
    expect(first, 'a runnable js example').toBeDefined();
    expect(first!.module, `${pkg.rel}/README.md:${first!.line - 1} is the first example`).toBe('esm');
    expect(first!.file.endsWith('.mjs'), 'an ESM example is written to a .mjs file (top-level await in a CommonJS project)').toBe(true);
    const lines = first!.code.split('\n').filter((l) => l.trim() !== '').length;
    expect(lines, 'lines of code in the first example').toBeLessThanOrEqual(20);
    const before = readme.split('\n').slice(Math.max(0, first!.line - 8), first!.line - 1).join('\n');
    expect(before, 'the text before the first example tells to save it as .mjs').toMatch(/\.mjs/);
  });

  test('README: a CommonJS example that requires the package', () => {
    const cjs = list.filter((e) => e.module === 'cjs');
    expect(cjs.length, 'a runnable cjs block').toBeGreaterThan(0);
    expect(cjs.some((e) => e.code.includes(`require('${pkg.name}`))).toBe(true);
  });

  test('README: the error codes it can raise', () => {
    expect(readme).toMatch(/^#{2,3} .*Error/m);
    expect(readme).toMatch(/`ERR_LIBIPC_[A-Z_]+`/);
  });

  test('README: a link to the API reference in docs/api/', () => {
    const api = links(readme).filter((l) => l.target.startsWith(`${REPO}/blob/main/docs/api/`));
    expect(api.length, 'a link to docs/api/').toBeGreaterThan(0);
    for (const l of api) expect(existsSync(join(ROOT, l.target.slice(`${REPO}/blob/main/`.length).split('#')[0]!)), l.target).toBe(true);
  });

  if (pkg.native) {
    test('README: how to build from source without a prebuild (npm_config_nodedir)', () => {
      expect(readme).toMatch(/^## Building from source/m);
      expect(readme).toContain('npm_config_nodedir');
      expect(readme).toMatch(/python3, make and g\+\+/);
    });
  }

  test('README: names only packages and files that exist (no DESIGN.md)', () => {
    expect(readme).not.toMatch(/DESIGN\.md/);
    const named = [...readme.matchAll(/@libipc\/[a-z][a-z-]*/g)].map((m) => m[0]);
    expect(named.filter((n) => !known.has(n))).toEqual([]);
  });
});
