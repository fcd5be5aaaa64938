// README examples are tests. Every fenced block marked `runnable` in the root README and in each published
// package's README runs in one project made by `npm init -y` that installed the packed tarballs with plain npm
// (no compiler on PATH: the native packages must load their prebuilds). Each must type-check against the
// installed types, exit 0 within its timeout, and leave nothing in /dev/shm and no process behind.
// Run alone: `pnpm doctest`. LIBIPC_DOCTEST_ONLY=shm,registry,root narrows it to those READMEs; LIBIPC_DOCTEST_KEEP=1
// keeps the project; LIBIPC_DOCTEST_VERBOSE=1 prints what each example printed.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compileCppBlocks, installedIncludeDirs } from './compile-cpp.js';
import { type Example, examples, links } from './markdown.js';
import { privateShm, runExample } from './run-example.js';
import { type Project, ROOT, makeProject, plainEnv, publishedPackages, tarballFiles } from './scratch.js';
import { type Placed, typecheckExamples } from './typecheck.js';

const REPO = 'https://github.com/libipc/libipc-node';
const all = publishedPackages();
const pkgs = publishedPackages(true);
const withRoot = !process.env.LIBIPC_DOCTEST_ONLY || process.env.LIBIPC_DOCTEST_ONLY.split(',').includes('root');
const readmes = [...(withRoot ? ['README.md'] : []), ...pkgs.map((p) => `${p.rel}/README.md`)];
const parsed = readmes.map((readme) => {
  try {
    return { readme, examples: examples(ROOT, readme), error: undefined as unknown };
  } catch (error) {
    return { readme, examples: [] as Example[], error };
  }
});

let work = '';
let project: Project | undefined;
let prepareError: unknown;
let typeErrors = new Map<string, string[]>();
let etcd: { endpoint: string; close(): Promise<void> } | undefined;
/** Per README: its C++ blocks compiled (once, before its first js block runs). */
const compiled = new Map<string, Promise<void>>();
const log = (s: string): void => console.log(`[doctest] ${s}`);

function folderOf(readme: string): string {
  return join(project!.dir, 'readme', readme === 'README.md' ? 'root' : dirname(readme).split('/').pop()!);
}

function ready(): Project {
  if (prepareError) throw prepareError;
  if (!project) throw new Error('the scratch project was not made');
  return project;
}

beforeAll(async () => {
  const t0 = performance.now();
  work = mkdtempSync(join(tmpdir(), 'libipc-doctest-'));
  try {
    project = await makeProject(work, all, log);
    const placed: Placed[] = [];
    for (const { readme, examples: list } of parsed) {
      const dir = folderOf(readme);
      mkdirSync(dir, { recursive: true });
      for (const ex of list) {
        writeFileSync(join(dir, ex.file), ex.code);
        if (ex.lang === 'js') placed.push({ example: ex, path: join(dir, ex.file) });
      }
    }
    const t = performance.now();
    typeErrors = typecheckExamples(placed);
    project.timings.typecheck = Math.round((performance.now() - t) / 100) / 10;
    log(`project ready in ${Math.round((performance.now() - t0) / 1000)} s (${JSON.stringify(project.timings)}), private /dev/shm: ${privateShm}`);
  } catch (err) {
    prepareError = err;
  }
}, 900_000);

afterAll(async () => {
  await etcd?.close();
  if (work && !process.env.LIBIPC_DOCTEST_KEEP) rmSync(work, { recursive: true, force: true });
  else if (work) log(`kept ${work}`);
});

async function needs(what: string[]): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const n of what) {
    if (n === 'etcd') {
      if (!etcd) {
        const { startEtcd } = await import('../../packages/cluster/test/etcd.js');
        etcd = await startEtcd();
      }
      env.ETCD_ENDPOINTS = etcd.endpoint;
    } else if (n === 'flatc') {
      const { ensureFlatc } = await import('../../packages/typed-channel/test/flatc.js');
      const why = ensureFlatc();
      if (why) throw new Error(`needs=flatc: ${why}`);
    } else {
      throw new Error(`needs=${n}: the runner knows needs=etcd and needs=flatc`);
    }
  }
  return env;
}

function compileCpp(readme: string, list: Example[]): Promise<void> {
  if (!list.some((e) => e.lang === 'cpp')) return Promise.resolve();
  let done = compiled.get(readme);
  if (!done) {
    done = compileCppBlocks(list, folderOf(readme), installedIncludeDirs(ready().dir, all));
    compiled.set(readme, done);
  }
  return done;
}

describe.each(parsed)('$readme', ({ readme, examples: list, error }) => {
  test('its runnable blocks are well marked', () => {
    if (error) throw error;
  });

  for (const ex of list.filter((e) => e.lang === 'cpp')) {
    test(`compiles the C++ block at line ${ex.line - 1} (${ex.file}) with g++ against the installed headers`, () => compileCpp(readme, list), ex.timeoutMs + 60_000);
  }

  const pkgDir = dirname(join(ROOT, readme));
  const shipped = list.filter((e) => e.lang === 'js' && readme !== 'README.md' && existsSync(join(pkgDir, 'examples', e.file)));
  if (shipped.length > 0) {
    test('its blocks named like a shipped example are that example', () => {
      for (const e of shipped) {
        const file = readFileSync(join(pkgDir, 'examples', e.file), 'utf8').replace(/^(#!.*\n)?(\/\/.*\n)*/, '');
        expect(e.code, `${readme}:${e.line - 1} and examples/${e.file} differ (the file may only add leading // comments)`).toBe(file);
      }
    });
  }

  test('its examples type-check against the installed packages', () => {
    ready();
    expect(typeErrors.get(readme) ?? [], 'type errors (checkJs, strict)').toEqual([]);
  });

  for (const ex of list.filter((e) => !e.helper)) {
    const label = `runs the example at line ${ex.line - 1} (${ex.module === 'sh' ? 'shell' : ex.module === 'esm' ? 'ESM' : 'CommonJS'}${ex.lang === 'js' ? `, ${ex.file}` : ''})`;
    test(
      label,
      async () => {
        const p = ready();
        await compileCpp(readme, list);
        const extra = await needs(ex.needs);
        const dir = folderOf(readme);
        // Run from the project's root, as a user would (`node example.mjs`, `npx …`); the files live in a folder per README.
        const r = await runExample(ex, {
          cwd: p.dir,
          file: join(dir, ex.file),
          env: plainEnv(process.env.PATH ?? '/usr/bin:/bin', extra),
        });
        const where = `${readme}:${ex.line - 1}`;
        if (process.env.LIBIPC_DOCTEST_VERBOSE) log(`${where} (${r.ms} ms):\n${r.output}`);
        expect(r.timedOut, `${where} did not finish within ${ex.timeoutMs / 1000} s:\n${r.output}`).toBe(false);
        expect(r.code, `${where} exited with ${r.code ?? r.signal}:\n${r.output}`).toBe(0);
        expect(r.leftovers, `${where} left these in /dev/shm:\n${r.output}`).toEqual([]);
        expect(r.strays, `${where} left these processes running (killed now):\n${r.output}`).toEqual([]);
      },
      ex.timeoutMs + 60_000,
    );
  }
});

describe.each(pkgs)('$name as packed', (pkg) => {
  test('the tarball holds package.json, README.md, LICENSE, and every file its README links to', () => {
    const files = tarballFiles(ready().tarballs.get(pkg.name)!);
    for (const f of ['package.json', 'README.md', 'LICENSE']) expect(files, `${pkg.name} tarball`).toContain(f);
    const text = readFileSync(join(pkg.dir, 'README.md'), 'utf8');
    const missing: string[] = [];
    for (const { line, target } of links(text)) {
      if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
      const path = normalize(target.split('#')[0]!).replace(/\/$/, '');
      const shipped = files.some((f) => f === path || f.startsWith(`${path}/`));
      if (!shipped) missing.push(`${pkg.rel}/README.md:${line} links to ${target}, which is not in the tarball (link to ${REPO}/blob/main/… or ship it)`);
    }
    expect(missing).toEqual([]);
  });

  if (pkg.native) {
    test('installs from its prebuild with no compiler on PATH (nothing built)', () => {
      const installed = join(ready().dir, 'node_modules', pkg.name);
      expect(existsSync(join(installed, 'prebuilds')), 'prebuilds/ shipped').toBe(true);
      expect(existsSync(join(installed, 'build')), 'a build/ folder means it compiled at install').toBe(false);
    });
  }
});

test('links to the repository point at files that exist', () => {
  const bad: string[] = [];
  for (const readme of readmes) {
    for (const { line, target } of links(readFileSync(join(ROOT, readme), 'utf8'))) {
      const m = new RegExp(`^${REPO}/(?:blob|tree)/main/([^#?]*)`).exec(target);
      const rel = m ? m[1]! : !/^[a-z]+:/i.test(target) && !target.startsWith('#') && readme === 'README.md' ? target.split('#')[0]! : undefined;
      if (rel !== undefined && !existsSync(join(ROOT, rel))) bad.push(`${readme}:${line} → ${target}`);
    }
  }
  expect(bad).toEqual([]);
});
