#!/usr/bin/env node
// C++ for the engine from the same schema as the TypeScript: flatc --cpp schemas/*.fbs → cpp/generated/.
// --check writes nothing and exits 1 when cpp/generated/ differs from what the schema generates.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = fileURLToPath(new URL('..', import.meta.url));
const check = process.argv.includes('--check');
const schemas = readdirSync(join(app, 'schemas')).filter((f) => f.endsWith('.fbs')).map((f) => join(app, 'schemas', f));
const tmp = mkdtempSync(join(tmpdir(), 'audio-cpp-codegen-'));
try {
  const r = spawnSync('flatc', ['--cpp', '-o', tmp, ...schemas], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    console.error(`cpp-codegen: flatc --cpp failed: ${r.error?.message ?? r.stderr}`);
    process.exit(2);
  }
  let differs = false;
  for (const f of readdirSync(tmp)) {
    const want = readFileSync(join(tmp, f), 'utf8');
    const target = join(app, 'cpp', 'generated', f);
    let have;
    try {
      have = readFileSync(target, 'utf8');
    } catch {
      have = undefined;
    }
    if (have === want) continue;
    differs = true;
    if (check) console.error(`cpp-codegen: cpp/generated/${f} is not what the schema generates: run pnpm codegen`);
    else writeFileSync(target, want);
  }
  process.exit(check && differs ? 1 : 0);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
