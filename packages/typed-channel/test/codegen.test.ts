// libipc-flatc (scripts/codegen.mjs, this package's bin): what it writes, what it refuses, what it never touches.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';

const CODEGEN = new URL('../scripts/codegen.mjs', import.meta.url).pathname;
const SCHEMAS = new URL('../schemas', import.meta.url).pathname;

/** flatc on PATH: installed from Debian when missing and we are root (serialized with the other installs). */
function ensureFlatc(): string | undefined {
  const has = (): boolean => spawnSync('flatc', ['--version']).status === 0;
  if (has()) return undefined;
  if (process.getuid?.() !== 0) return 'flatc is not installed and the tests do not run as root (apt-get install -y flatbuffers-compiler)';
  const r = spawnSync(
    'flock',
    ['/tmp/libipc-apt.lock', 'sh', '-c', 'command -v flatc >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q flatbuffers-compiler || { apt-get update -q && apt-get install -y -q flatbuffers-compiler; }; }'],
    { encoding: 'utf8', timeout: 600_000 },
  );
  return has() ? undefined : `installing flatbuffers-compiler failed: ${(r.stderr || r.stdout || String(r.error)).slice(-1000)}`;
}

let noFlatc: string | undefined;
beforeAll(() => {
  noFlatc = ensureFlatc();
  if (noFlatc) console.warn(`libipc-flatc tests that run flatc are skipped: ${noFlatc}`);
}, 600_000);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A project folder with a copy of the sample schema in schemas/. */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'libipc-flatc-test-'));
  dirs.push(dir);
  cpSync(SCHEMAS, join(dir, 'schemas'), { recursive: true });
  return dir;
}

function flatc(cwd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CODEGEN, ...args], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('arguments', () => {
  test('--help prints the usage and exits 0', () => {
    for (const a of ['--help', '-h']) {
      const r = flatc(tmpdir(), [a]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Usage: libipc-flatc --schemas <dir> --out <dir> [--check]');
    }
  });

  test('--schemas and --out are both required; nothing is written without them', () => {
    const dir = project();
    for (const args of [[], ['--out', 'gen'], ['--schemas', 'schemas'], ['--out', 'gen', '--check']]) {
      const r = flatc(dir, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--(schemas|out) <dir> is required/);
    }
    expect(tree(dir)).toEqual(['schemas/sample.fbs']);
  });

  test('an unknown option or a missing value is an error with the usage', () => {
    const r = flatc(project(), ['--schemas', 'schemas', '--out', 'gen', '--outt', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown argument --outt');
    expect(r.stderr).toContain('Usage:');
    expect(flatc(project(), ['--schemas', '--out', 'gen']).stderr).toContain('--schemas needs a folder');
  });

  test('refuses to write inside node_modules, also through a symlink, before touching anything', () => {
    const dir = project();
    const inside = join(dir, 'node_modules', '@libipc', 'typed-channel', 'test', 'generated');
    mkdirSync(inside, { recursive: true });
    writeFileSync(join(inside, 'keep.ts'), 'export {};\n');
    const r = flatc(dir, ['--schemas', 'schemas', '--out', 'node_modules/@libipc/typed-channel/test/generated']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('inside node_modules');
    symlinkSync(join(dir, 'node_modules'), join(dir, 'link'));
    expect(flatc(dir, ['--schemas', 'schemas', '--out', 'link/@libipc/x']).stderr).toContain('inside node_modules');
    expect(tree(join(dir, 'node_modules'))).toEqual(['@libipc/typed-channel/test/generated/keep.ts']);
  });

  test('a folder without schemas is an error', () => {
    const dir = project();
    mkdirSync(join(dir, 'empty'));
    const r = flatc(dir, ['--schemas', 'empty', '--out', 'gen']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no .fbs schema in empty');
    expect(existsSync(join(dir, 'gen'))).toBe(false);
  });
});

test('flatc missing: a clear message, and the output folder is untouched', () => {
  const dir = project();
  mkdirSync(join(dir, 'gen'));
  writeFileSync(join(dir, 'gen', 'mine.ts'), 'export const mine = 1;\n');
  writeFileSync(join(dir, 'gen', 'old_generated.ts'), '// automatically generated by the FlatBuffers compiler, do not modify\n');
  const r = flatc(dir, ['--schemas', 'schemas', '--out', 'gen'], { ...process.env, PATH: '/nonexistent' });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('flatc not found on PATH');
  expect(r.stderr).toContain('apt-get install -y flatbuffers-compiler');
  expect(r.stderr).toContain('nothing was written');
  expect(tree(join(dir, 'gen'))).toEqual(['mine.ts', 'old_generated.ts']);
});

describe('with flatc', () => {
  test('generates into --out with .js import extensions, and --check agrees', ({ skip }) => {
    if (noFlatc) skip(noFlatc);
    const dir = project();
    const r = flatc(dir, ['--schemas', 'schemas', '--out', 'src/generated']);
    expect(r.code, r.stderr).toBe(0);
    expect(tree(join(dir, 'src/generated'))).toEqual(['libipc/sample/sample.ts', 'sample_generated.ts']);
    expect(readFileSync(join(dir, 'src/generated/sample_generated.ts'), 'utf8')).toContain("from './libipc/sample/sample.js';");
    // The same output as this package's committed code.
    const committed = new URL('./generated/libipc/sample/sample.ts', import.meta.url).pathname;
    expect(readFileSync(join(dir, 'src/generated/libipc/sample/sample.ts'), 'utf8')).toBe(readFileSync(committed, 'utf8'));
    const check = flatc(dir, ['--schemas', 'schemas', '--out', 'src/generated', '--check']);
    expect(check.code, check.stderr).toBe(0);
  });

  test('never deletes or changes a file it did not write; removes only its own stale files', ({ skip }) => {
    if (noFlatc) skip(noFlatc);
    const dir = project();
    const gen = join(dir, 'gen');
    mkdirSync(join(gen, 'nested'), { recursive: true });
    writeFileSync(join(gen, 'index.ts'), "export * from './sample_generated.js';\n");
    writeFileSync(join(gen, 'nested', 'notes.md'), 'mine\n');
    const stale = '// automatically generated by the FlatBuffers compiler, do not modify\nexport {};\n';
    mkdirSync(join(gen, 'old'));
    writeFileSync(join(gen, 'old', 'gone_generated.ts'), stale);
    const r = flatc(dir, ['--schemas', 'schemas', '--out', 'gen']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('stale removed: old/gone_generated.ts');
    expect(tree(gen)).toEqual(['index.ts', 'libipc/sample/sample.ts', 'nested/notes.md', 'sample_generated.ts']);
    expect(readFileSync(join(gen, 'index.ts'), 'utf8')).toBe("export * from './sample_generated.js';\n");
    expect(readFileSync(join(gen, 'nested', 'notes.md'), 'utf8')).toBe('mine\n');
    // A second run changes nothing.
    const again = flatc(dir, ['--schemas', 'schemas', '--out', 'gen']);
    expect(again.stdout).toContain('0 written, 2 unchanged');
  });

  test("refuses to overwrite a user's file where flatc would write, before writing anything", ({ skip }) => {
    if (noFlatc) skip(noFlatc);
    const dir = project();
    mkdirSync(join(dir, 'gen'));
    writeFileSync(join(dir, 'gen', 'sample_generated.ts'), 'my own code\n');
    const r = flatc(dir, ['--schemas', 'schemas', '--out', 'gen']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('would be overwritten but flatc did not write it');
    expect(tree(join(dir, 'gen'))).toEqual(['sample_generated.ts']);
    expect(readFileSync(join(dir, 'gen', 'sample_generated.ts'), 'utf8')).toBe('my own code\n');
  });

  test('--check exits 1 on drift and writes nothing', ({ skip }) => {
    if (noFlatc) skip(noFlatc);
    const dir = project();
    expect(flatc(dir, ['--schemas', 'schemas', '--out', 'gen']).code).toBe(0);
    writeFileSync(join(dir, 'gen', 'sample_generated.ts'), '// automatically generated by the FlatBuffers compiler, do not modify\n// edited\n');
    const r = flatc(dir, ['--schemas', 'schemas', '--out', 'gen', '--check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('differs from schemas in: sample_generated.ts');
    expect(readFileSync(join(dir, 'gen', 'sample_generated.ts'), 'utf8')).toContain('// edited');
  });

  test('a schema flatc rejects: its error, and nothing written', ({ skip }) => {
    if (noFlatc) skip(noFlatc);
    const dir = project();
    writeFileSync(join(dir, 'schemas', 'broken.fbs'), 'table { oops\n');
    const r = flatc(dir, ['--schemas', 'schemas', '--out', 'gen']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('flatc failed');
    expect(existsSync(join(dir, 'gen'))).toBe(false);
  });
});
