#!/usr/bin/env node
// The native addon of the package in the current folder, for `pnpm build` in the workspace: compiled with
// node-gyp unless build/Release holds an addon built from exactly these sources (a hash of src/, include/ and
// binding.gyp, written next to it after each build). `node-gyp-build` alone (the install script users run) keeps
// any addon that loads, so after a pull that changed the C++ a build went on with the old binary — and a build
// cache then kept that binary for the new sources. File times cannot tell (a cache restores files with new ones).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const RELEASE = 'build/Release';
const STAMP = join(RELEASE, '.libipc-sources.sha256');

function files(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((f) => files(join(path, f)));
}

const hash = createHash('sha256');
for (const f of [...files('src'), ...files('include'), 'binding.gyp']) hash.update(`${f}\0`).update(readFileSync(f));
const sources = `${hash.digest('hex')} node-abi ${process.versions.modules}\n`;
const addons = existsSync(RELEASE) ? readdirSync(RELEASE).filter((f) => f.endsWith('.node')) : [];
if (addons.length > 0 && existsSync(STAMP) && readFileSync(STAMP, 'utf8') === sources) process.exit(0);

console.log(`build-native: ${addons.length === 0 ? 'no addon built yet' : 'the addon was not built from these sources'}: node-gyp rebuild`);
// This Node's own headers when nobody set a nodedir (node-gyp would download them; turbo does not pass on the
// npm_config_nodedir that scripts/pnpm.sh sets, and an ordinary user has no ~/.npmrc saying it).
const prefix = dirname(dirname(process.execPath));
const nodedir = !process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
const r = spawnSync('node-gyp', ['rebuild', ...nodedir], { stdio: 'inherit' });
if (r.error) {
  console.error(`build-native: cannot run node-gyp (${r.error.message}); install the workspace first (pnpm install)`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(STAMP, sources);
