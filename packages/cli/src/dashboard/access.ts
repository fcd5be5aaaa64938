import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { hostname } from 'node:os';

/** The header that carries the action token (a custom header: a cross-origin page cannot send it without a CORS preflight, which is never granted). */
export const TOKEN_HEADER = 'x-libipc-token';

/** A fresh action token: 32 random bytes, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** True for an address only this machine reaches. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** The token the request carries (X-Libipc-Token, or Authorization: Bearer), if any. */
export function tokenOf(req: IncomingMessage): string | undefined {
  const h = req.headers[TOKEN_HEADER];
  if (typeof h === 'string' && h !== '') return h;
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
  return m?.[1];
}

/** Compares in constant time (digests of equal length, whatever was sent). */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/**
 * Which Host headers the dashboard answers: against DNS rebinding (a hostile name that resolves to
 * 127.0.0.1), only loopback names on a loopback bind; on a wider bind also IP literals and this machine's name.
 */
export class HostRule {
  private readonly names: Set<string>;
  /** Bound beyond loopback: other machines reach it by address or by this machine's name. */
  private readonly wide: boolean;

  constructor(
    boundHost: string,
    private readonly port: number,
  ) {
    const bound = boundHost.replace(/^\[|\]$/g, '').toLowerCase();
    this.names = new Set(['localhost', '127.0.0.1', '::1', bound]);
    if (!isLoopback(bound)) {
      const me = hostname().toLowerCase();
      this.names.add(me);
      this.names.add(me.split('.')[0]!);
    }
    this.wide = !isLoopback(bound);
  }

  allows(hostHeader: string | undefined): boolean {
    if (!hostHeader) return false;
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(hostHeader.trim());
    if (!m) return false;
    const port = m[2] === undefined ? 80 : Number(m[2]);
    if (port !== this.port) return false;
    const name = m[1]!.replace(/^\[|\]$/g, '').toLowerCase();
    if (this.names.has(name)) return true;
    if (isLoopback(name) && isIP(name) !== 0) return true;
    return this.wide && isIP(name) !== 0;
  }
}

/**
 * A state-changing request must come from our own page: an Origin, when the browser sends one, must be
 * exactly this server's (http://<Host>); Sec-Fetch-Site, when sent, must say same-origin (or none: typed by hand).
 * Clients that send neither (curl) are not browsers, and cannot be tricked into a request by a page.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== `http://${String(req.headers.host).toLowerCase()}`) return false;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  return true;
}
