// A real etcd for the tests: found on PATH (installed from Debian when missing and we are root), started on
// 127.0.0.1 on free ports with a temporary data dir, stopped by pid and removed afterwards. If it cannot be
// started the tests fail with a message that says why: they are never skipped silently.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { freePort } from '../../../test/helpers.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ENSURE = new URL('../scripts/ensure-etcd.sh', import.meta.url).pathname;

function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin', '/usr/local/bin'])) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return undefined;
}

let binary: string | undefined;

/** The etcd binary; installs it (Debian's etcd-server, serialized by flock) when missing and running as root. */
export function etcdBinary(): string {
  if (binary) return binary;
  binary = onPath('etcd');
  if (binary) return binary;
  if (process.getuid?.() !== 0) {
    throw new Error('etcd is not installed and the tests do not run as root: run packages/cluster/scripts/ensure-etcd.sh as root (apt-get install -y etcd-server etcd-client)');
  }
  const r = spawnSync('bash', [ENSURE], { encoding: 'utf8', timeout: 600_000 });
  binary = onPath('etcd');
  if (!binary) {
    throw new Error(`etcd is not installed and installing it failed (exit ${r.status}): ${(r.stderr || r.stdout || String(r.error)).slice(-2000)}`);
  }
  return binary;
}


export interface EtcdServer {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly dataDir: string;
  readonly pid: number | undefined;
  /** Starts it again (same ports, same data) after stop() or kill(). */
  start(): Promise<void>;
  /** SIGKILL (or another signal) and wait for the exit; the data dir stays. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops it and removes its data dir. */
  close(): Promise<void>;
}

const DIR_PREFIX = 'libipc-etcd-';

/**
 * Where test etcds keep their data: a tmpfs (/dev/shm) when there is one, so that etcd's fsync per write never
 * waits on a disk that a loaded CI machine keeps busy (a stall past the election timeout looks like a dead
 * leader); else the temp folder.
 */
export function dataRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** Data dirs of test etcds that are gone (a test process killed before its teardown), older than 10 minutes. */
function removeStaleDirs(): void {
  const live = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    })
    .join('\n');
  for (const name of readdirSync(dataRoot())) {
    if (!name.startsWith(DIR_PREFIX) || live.includes(name)) continue;
    const dir = join(dataRoot(), name);
    try {
      if (Date.now() - statSync(dir).mtimeMs > 600_000) rmSync(dir, { recursive: true, force: true });
    } catch {
      // removed meanwhile
    }
  }
}

/** `setpriv --pdeathsig KILL`: etcd dies with the test process even if that is killed before its teardown. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find(existsSync);

/** Starts etcd on 127.0.0.1 with a temp data dir; resolves when it serves requests (about a second). */
export async function startEtcd(): Promise<EtcdServer> {
  const bin = etcdBinary();
  removeStaleDirs();
  // A free port can be taken by someone else before etcd binds it: try again with other ports then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(bin);
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
}

async function startOn(bin: string): Promise<EtcdServer> {
  const dataDir = mkdtempSync(join(dataRoot(), DIR_PREFIX));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();

  const start = async () => {
    const args = [
      '--name', 'test',
      '--data-dir', join(dataDir, 'data'),
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`,
      // A short election timeout lowers etcd's minimum lease TTL to 1 s (it is 1.5 × election timeout).
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--snapshot-count', '10000',
    ];
    const c = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    exited = once(c, 'exit');
    const tail: string[] = [];
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`etcd did not become ready within 20 s; its log:\n${tail.join('\n')}`)), 20_000);
      createInterface({ input: c.stderr! }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (line.includes('serving client traffic') || line.includes('ready to serve client requests')) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('error', (err) => (clearTimeout(timer), reject(new Error(`etcd could not be started: ${err.message}`))));
      c.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`etcd exited (${code ?? signal}) before it was ready; its log:\n${tail.join('\n')}`));
      });
    });
    try {
      await ready;
    } catch (err) {
      await kill('SIGKILL');
      throw err;
    }
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const c = child;
    if (!c) return;
    if (c.exitCode === null && c.signalCode === null) {
      if (signal !== 'SIGKILL') c.kill('SIGCONT');
      c.kill(signal);
    }
    await exited;
    child = undefined;
  };

  try {
    await start();
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    dataDir,
    get pid() {
      return child?.pid;
    },
    start,
    kill,
    async close() {
      await kill('SIGTERM');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
