import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIRST_INHERITED_FD } from '@libipc/process';
import { DEFAULT_BACKLOG, SystemError, closeFd, listenTcp } from '@libipc/shm';

/** Where the instances find their inherited listening sockets: "port:fd,port:fd". */
export const LISTEN_FDS_ENV = 'LIBIPC_LISTEN_FDS';
/** Any address, IPv4 included (IPV6_V6ONLY off), like Node's listen(port); 0.0.0.0 on a kernel without IPv6. */
const HOSTS = ['::', '0.0.0.0'];

/**
 * The listening sockets of the services with `listen`: one per service and port, opened by the manager the
 * first time an instance needs it and handed to every instance (spawn's inheritFds). The manager never polls
 * them, so it never accepts; the instances share the one queue, which outlives any of them: a connection
 * queued while an instance stops waits for the next accept of another, where per-instance SO_REUSEPORT
 * sockets would reset it.
 */
export class ListenSockets {
  private readonly open = new Map<string, Map<number, number>>();

  /** The fds of `ports` for `service`, in that order (opened now when missing). Throws SystemError (e.g. EADDRINUSE). */
  fdsFor(service: string, ports: readonly number[]): number[] {
    let mine = this.open.get(service);
    if (!mine) {
      mine = new Map();
      this.open.set(service, mine);
    }
    const out: number[] = [];
    for (const port of ports) {
      let fd = mine.get(port);
      if (fd === undefined) {
        fd = openAny(port, service);
        mine.set(port, fd);
      }
      out.push(fd);
    }
    return out;
  }

  /** Closes the sockets of `service` whose port is not in `keep` (all of them by default). */
  release(service: string, keep: readonly number[] = []): void {
    const mine = this.open.get(service);
    if (!mine) return;
    for (const [port, fd] of mine) {
      if (keep.includes(port)) continue;
      mine.delete(port);
      try {
        closeFd(fd);
      } catch {
        // already gone: nothing to release
      }
    }
    if (mine.size === 0) this.open.delete(service);
  }

  closeAll(): void {
    for (const service of [...this.open.keys()]) this.release(service);
  }

  /** Ports open for `service` now (for status and tests). */
  portsOf(service: string): number[] {
    return [...(this.open.get(service)?.keys() ?? [])];
  }
}

function openAny(port: number, service: string): number {
  let last: unknown;
  for (const host of HOSTS) {
    try {
      return listenTcp(host, port, DEFAULT_BACKLOG);
    } catch (err) {
      last = err;
      // Only a kernel without IPv6 makes the IPv4 fallback worth a try.
      if (!(err instanceof SystemError) || err.errno !== 'EAFNOSUPPORT') break;
    }
  }
  const e = last as Error;
  throw e instanceof SystemError ? new SystemError(`${service}: ${e.message}`, { errno: e.errno, syscall: e.syscall, cause: e }) : e;
}

/** The environment of an instance given `fds` for `ports`: LIBIPC_LISTEN_FDS, and the preload for Node commands. */
export function listenEnv(ports: readonly number[], env: Record<string, string | undefined>): Record<string, string> {
  if (ports.length === 0) return {};
  const fds = ports.map((p, i) => `${p}:${FIRST_INHERITED_FD + i}`).join(',');
  // NODE_OPTIONS reaches every node the command starts (a shell script, npm start): others ignore it.
  const preload = `--require ${quote(PRELOAD_PATH)}`;
  const before = env.NODE_OPTIONS ?? process.env.NODE_OPTIONS;
  const nodeOptions = before && before.trim() !== '' ? `${before} ${preload}` : preload;
  return { [LISTEN_FDS_ENV]: fds, NODE_OPTIONS: nodeOptions };
}

const quote = (p: string) => (/[\s"\\]/.test(p) ? `"${p.replace(/(["\\])/g, '\\$1')}"` : p);

/** The preload shipped in this package (preload/listen.cjs; the same depth from src/ and dist/). */
export const PRELOAD_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'preload', 'listen.cjs');
