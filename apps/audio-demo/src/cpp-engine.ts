// The C++ audio engine (cpp/audio_engine.cc): built on demand with plain g++ against the libipc packages' C++
// headers and FlatBuffers' runtime headers — Debian's libflatbuffers-dev 2.0.8 (the version of the flatc that
// generated cpp/generated/), taken from /usr/include when installed, else downloaded from Debian's archive with
// `apt-get download` and unpacked into .deps/ (no root needed). `pnpm demo` alone never builds it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type EngineKind = 'node' | 'cpp' | 'mixed';

/** What a ServiceGroup runs for each instance: `executable ...args <id>`. */
export interface EngineCommand {
  executable: string;
  args: string[];
}

const APP = fileURLToPath(new URL('..', import.meta.url));
const SOURCES = ['audio_engine.cc', 'engine_logic.h', 'generated/audio_protocol_generated.h'].map((f) => join(APP, 'cpp', f));
const FLATBUFFERS_VERSION = '2.0.8';

/** The group's command for an engine kind. 'mixed': instance 0 is the C++ engine, every other the Node service. */
export function engineCommand(kind: EngineKind, servicePath: string, log: (line: string) => void): EngineCommand {
  if (kind === 'node') return { executable: process.execPath, args: [servicePath] };
  const engine = buildCppEngine(log);
  if (kind === 'cpp') return { executable: engine, args: [] };
  // sh -c SCRIPT engine node service <id>: $0 $1 $2 $3; exec keeps the pid the group watches.
  const script = 'if [ "$3" = 0 ]; then exec "$0" "$3"; else exec "$1" "$2" "$3"; fi';
  return { executable: '/bin/sh', args: ['-c', script, engine, process.execPath, servicePath] };
}

/** dist/audio-engine, compiled when missing or older than its sources or any libipc header it can include. */
export function buildCppEngine(log: (line: string) => void): string {
  const out = join(APP, 'dist', 'audio-engine');
  const require = createRequire(import.meta.url);
  const includeDirs = ['@libipc/shm/include', '@libipc/typed-channel/include', '@libipc/registry/include', '@libipc/group/include'].map(
    (m) => (require(m) as { include_dir: string }).include_dir,
  );
  // The libipc headers count too: an engine built against older ones may not match today's segment layouts.
  const headers = includeDirs.flatMap((dir) => readdirSync(join(dir, 'libipc')).map((f) => join(dir, 'libipc', f)));
  const newest = Math.max(...[...SOURCES, ...headers].map((f) => statSync(f).mtimeMs));
  if (existsSync(out) && statSync(out).mtimeMs >= newest) return out;
  const includes = includeDirs.map((dir) => `-I${dir}`);
  const flatbuffers = flatbuffersInclude(log);
  log(`host: building the C++ engine: g++ -std=c++17 -O2 -pthread cpp/audio_engine.cc -o dist/audio-engine`);
  mkdirSync(join(APP, 'dist'), { recursive: true });
  try {
    execFileSync('g++', ['-std=c++17', '-O2', '-pthread', ...includes, `-I${flatbuffers}`, join(APP, 'cpp', 'audio_engine.cc'), '-o', out], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? 'g++ is not installed: --engine cpp|mixed needs a C++17 compiler (Debian: apt-get install -y g++)' : `g++ failed: ${e.message}`);
  }
  return out;
}

/** A folder holding flatbuffers/flatbuffers.h of version 2.0.8. */
function flatbuffersInclude(log: (line: string) => void): string {
  for (const dir of ['/usr/include', join(APP, '.deps', 'usr', 'include')]) if (hasVersion(dir)) return dir;
  const deps = join(APP, '.deps');
  rmSync(deps, { recursive: true, force: true });
  mkdirSync(deps, { recursive: true });
  log(`host: fetching FlatBuffers ${FLATBUFFERS_VERSION} headers (Debian's libflatbuffers-dev) into apps/audio-demo/.deps`);
  try {
    execFileSync('apt-get', ['download', 'libflatbuffers-dev'], { cwd: deps, stdio: ['ignore', 'ignore', 'pipe'] });
    const deb = readdirSync(deps).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download left no .deb');
    execFileSync('dpkg-deb', ['-x', deb, '.'], { cwd: deps });
  } catch (err) {
    throw new Error(`cannot get the FlatBuffers C++ headers (${(err as Error).message.split('\n')[0]}); install them with: apt-get install -y libflatbuffers-dev`);
  }
  const dir = join(deps, 'usr', 'include');
  if (!hasVersion(dir)) throw new Error(`Debian's libflatbuffers-dev is not version ${FLATBUFFERS_VERSION} here; cpp/generated/ was made by flatc ${FLATBUFFERS_VERSION}`);
  return dir;
}

function hasVersion(dir: string): boolean {
  const base = join(dir, 'flatbuffers', 'base.h');
  if (!existsSync(base)) return false;
  const text = readFileSync(base, 'utf8');
  const [major, minor, rev] = ['MAJOR', 'MINOR', 'REVISION'].map((k) => new RegExp(`#define FLATBUFFERS_VERSION_${k} (\\d+)`).exec(text)?.[1]);
  return `${major}.${minor}.${rev}` === FLATBUFFERS_VERSION;
}
