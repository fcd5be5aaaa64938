import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Readiness as ProcessReadiness } from '@libipc/process';
import { TimeoutError } from '@libipc/shm';
import type { Readiness } from './spec.js';

// A port or URL cannot be watched for "now accepting": the probes retry, every PROBE_INTERVAL_MS, bounded
// by the service's startTimeoutMs. Everything else is an event (spawn, READY on the fd, a registry wake-up).
const PROBE_INTERVAL_MS = 50;
const ATTEMPT_TIMEOUT_MS = 1000;

/** The part @libipc/process's ManagedProcess waits for itself. */
export function processReadiness(r: Readiness): ProcessReadiness {
  if (r === 'none') return 'spawn';
  if (r === 'ready') return 'ready';
  if (typeof r === 'object' && 'registry' in r) return r.domain === undefined ? { registered: r.registry } : { registered: r.registry, domain: r.domain };
  // tcp and http: running once spawned, then probed by the supervisor.
  return 'spawn';
}

export function needsProbe(r: Readiness): r is { tcp: number } | { http: string } {
  return typeof r === 'object' && ('tcp' in r || 'http' in r);
}

export function describeReadiness(r: Readiness): string {
  if (r === 'none') return 'spawned';
  if (r === 'ready') return 'wrote READY';
  if ('registry' in r) return `registered ${r.registry}`;
  if ('tcp' in r) return `accepts TCP connections on port ${r.tcp}`;
  return `answers ${r.http}`;
}

/** Resolves once the port accepts a connection / the URL answers 2xx or 3xx; rejects on timeout or abort. */
export async function probe(r: { tcp: number } | { http: string }, name: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const once = 'tcp' in r ? () => tcpOnce(r.tcp, signal) : () => httpOnce(r.http, signal);
  for (;;) {
    signal.throwIfAborted();
    if (await once()) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      const what = 'tcp' in r ? `accept TCP connections on port ${r.tcp}` : `answer ${r.http} with a 2xx or 3xx status`;
      throw new TimeoutError(`${name} did not ${what} within ${timeoutMs} ms; check its port, or raise startTimeoutMs`);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, Math.min(PROBE_INTERVAL_MS, left));
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function tcpOnce(port: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: 'localhost', timeout: ATTEMPT_TIMEOUT_MS });
    const end = (ok: boolean) => {
      signal.removeEventListener('abort', abort);
      s.destroy();
      resolve(ok);
    };
    const abort = () => end(false);
    signal.addEventListener('abort', abort, { once: true });
    s.once('connect', () => end(true));
    s.once('error', () => end(false));
    s.once('timeout', () => end(false));
  });
}

function httpOnce(url: string, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    let settled = false;
    const end = (ok: boolean) => {
      if (settled) return;
      settled = true;
      resolve(ok);
    };
    try {
      const req = get(url, { signal, timeout: ATTEMPT_TIMEOUT_MS, agent: false }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        end(code >= 200 && code < 400);
      });
      req.once('error', () => end(false));
      req.once('timeout', () => req.destroy());
    } catch {
      end(false);
    }
  });
}
