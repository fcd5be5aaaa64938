#!/usr/bin/env node
// Generates TypeScript from schemas/*.fbs with flatc (Debian: apt-get install -y flatbuffers-compiler) into
// test/generated/. `--check` regenerates into a temporary folder and exits 1 when the committed code differs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schemas = join(root, 'schemas');
const target = join(root, 'test', 'generated');
const check = process.argv.includes('--check');

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

function generate(out) {
  const fbs = readdirSync(schemas).filter((f) => f.endsWith('.fbs')).map((f) => join(schemas, f));
  try {
    execFileSync('flatc', ['--ts', '-o', out, ...fbs], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    if (err.code === 'ENOENT') {
      console.error('flatc not found: apt-get install -y flatbuffers-compiler');
      process.exit(2);
    }
    throw err;
  }
  // Node's ESM resolution (NodeNext) needs explicit .js extensions on relative imports.
  for (const f of files(out)) {
    const text = readFileSync(f, 'utf8').replace(/(from '\.{1,2}\/[^']*?)(?<!\.js)';/g, "$1.js';");
    writeFileSync(f, text);
  }
}

if (check) {
  const tmp = mkdtempSync(join(tmpdir(), 'libipc-codegen-'));
  try {
    generate(tmp);
    const want = new Map(files(tmp).map((f) => [relative(tmp, f), readFileSync(f, 'utf8')]));
    const have = new Map(files(target).map((f) => [relative(target, f), readFileSync(f, 'utf8')]));
    const drift = [...new Set([...want.keys(), ...have.keys()])].filter((k) => want.get(k) !== have.get(k));
    if (drift.length > 0) {
      console.error(`generated code differs from schemas/ in: ${drift.join(', ')}; run \`pnpm codegen\` and commit`);
      process.exit(1);
    }
    console.log('generated code matches schemas/');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
} else {
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  generate(target);
  console.log(`generated ${files(target).map((f) => relative(root, f)).join(', ')}`);
}
