import { closeSync } from 'node:fs';
import { InvalidArgumentError, SystemError } from './errors.js';
import { native } from './native.js';
import { describeValue } from './options.js';

/** The fds listenTcp opened and closeFd did not close yet: closeFd closes nothing else (no stray close of a reused number). */
const opened = new Set<number>();

/** The kernel's default cap (net.core.somaxconn) on this machine kind; Node's own listen() default. */
export const DEFAULT_BACKLOG = 511;

/**
 * Opens a listening TCP socket (SO_REUSEADDR + SO_REUSEPORT, backlog, close-on-exec) and returns its fd. Nothing
 * in this process polls it: it exists to be handed to child processes (spawn's `inheritFds`), which accept from
 * the one queue it owns; a child that exits never takes queued connections with it. `host` is a numeric
 * address ('::' accepts IPv4 too; '0.0.0.0', '127.0.0.1', …). Close it with closeFd.
 */
export function listenTcp(host: string, port: number, backlog: number = DEFAULT_BACKLOG): number {
  if (typeof host !== 'string' || host.length === 0 || host.length > 64) {
    throw new InvalidArgumentError(`listenTcp: host must be a numeric IPv4 or IPv6 address ('::', '0.0.0.0', '127.0.0.1'), got ${describeValue(host)}`);
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidArgumentError(`listenTcp: port must be a whole number from 1 to 65535 (a fixed port the children share), got ${describeValue(port)}`);
  }
  if (typeof backlog !== 'number' || !Number.isInteger(backlog) || backlog < 1 || backlog > 65_535) {
    throw new InvalidArgumentError(`listenTcp: backlog must be a whole number from 1 to 65535, got ${describeValue(backlog)}`);
  }
  try {
    const fd = native().listenTcp(host, port, backlog);
    opened.add(fd);
    return fd;
  } catch (err) {
    const e = err as { errno?: string; syscall?: string; message?: string };
    if (e.syscall === 'inet_pton') {
      throw new InvalidArgumentError(`listenTcp: host must be a numeric IPv4 or IPv6 address ('::', '0.0.0.0', '127.0.0.1'), got ${describeValue(host)}`);
    }
    const hint =
      e.errno === 'EADDRINUSE'
        ? `; another process listens on port ${port} (find it with \`ss -ltnp 'sport = :${port}'\`), stop it or pick another port`
        : e.errno === 'EACCES'
          ? `; ports below 1024 need CAP_NET_BIND_SERVICE: pick a port from 1024 up`
          : '';
    throw new SystemError(`cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${e.message ?? String(err)}${hint}`, {
      errno: e.errno ?? 'EIO',
      syscall: e.syscall ?? 'listen',
      cause: err,
    });
  }
}

/** Closes an fd that listenTcp opened (any other number, or one closed already: ERR_LIBIPC_INVALID_ARGUMENT). */
export function closeFd(fd: number): void {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new InvalidArgumentError(`closeFd: fd must be a whole number >= 0, got ${describeValue(fd)}`);
  }
  if (!opened.has(fd)) throw new InvalidArgumentError(`closeFd: fd ${fd} is not a socket listenTcp opened (or it was closed already)`);
  opened.delete(fd);
  try {
    closeSync(fd);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new SystemError(`cannot close fd ${fd}: ${e.message}`, { errno: e.code ?? 'EIO', syscall: 'close', cause: err });
  }
}
