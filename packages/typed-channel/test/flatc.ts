// flatc for the tests that need it (libipc-flatc's, the README's): installed from Debian when missing and we
// are root, serialized with every other install on this machine.
import { spawnSync } from 'node:child_process';

/** undefined when flatc runs; else why it cannot (not root, or the install failed). */
export function ensureFlatc(): string | undefined {
  const has = (): boolean => spawnSync('flatc', ['--version']).status === 0;
  if (has()) return undefined;
  if (process.getuid?.() !== 0) return 'flatc is not installed and the tests do not run as root (apt-get install -y flatbuffers-compiler)';
  const r = spawnSync(
    'flock',
    [
      '/tmp/libipc-apt.lock',
      'sh',
      '-c',
      'command -v flatc >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q flatbuffers-compiler || { apt-get update -q && apt-get install -y -q flatbuffers-compiler; }; }',
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  return has() ? undefined : `installing flatbuffers-compiler failed: ${(r.stderr || r.stdout || String(r.error)).slice(-1000)}`;
}
