import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HostRule, sameOrigin, tokenMatches, tokenOf } from './access.js';
import { type Actions, isAction } from './actions.js';
import type { DashboardState } from './dashboard-state.js';
import type { EventStream } from './event-stream.js';
import type { StaticFile } from './static-files.js';

const ACTION_PATH = /^\/api\/stores\/([0-9a-f]{12})\/services\/([A-Za-z0-9._-]{1,63})\/([a-z]+)$/;
/** Actions carry no body; anything bigger than this is not ours. */
const MAX_BODY = 1024;

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  // Only our own files: no inline script, nothing from elsewhere (the machines reach no network anyway).
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

export interface ServerParts {
  state: DashboardState;
  stream: EventStream;
  actions: Actions;
  files: Map<string, StaticFile>;
  token: string;
  /** Reads the gauges again (heartbeats, liveness) before answering GET /api/state. */
  sample: () => void;
}

/**
 * The dashboard's HTTP face (Node's http): the page, GET /api/state, GET /api/events (Server-Sent Events) and
 * POST /api/stores/<store>/services/<name>/<restart|stop|start>. Every request must name this server in its
 * Host; an action must be a POST from our own origin carrying the token in a header (never a cookie: CSRF-safe).
 */
export class DashboardServer {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async listen(host: string, port: number, parts: ServerParts): Promise<DashboardServer> {
    const server = createServer();
    server.maxConnections = 256;
    server.headersTimeout = 10_000;
    let rule: HostRule | undefined;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      handle(req, res, rule!, parts).catch((err: unknown) => {
        if (!res.headersSent) send(res, 500, { ok: false, error: err instanceof Error ? err.message : String(err) });
        else res.destroy();
      });
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = (server.address() as AddressInfo).port;
    rule = new HostRule(host, bound);
    const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    return new DashboardServer(server, `http://${shown}:${bound}/`);
  }

  /** Stops taking requests and drops open connections (the event streams are ended before). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, rule: HostRule, parts: ServerParts): Promise<void> {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  if (!rule.allows(req.headers.host)) {
    req.resume();
    send(res, 403, { ok: false, error: 'unexpected Host header: open the dashboard by the address it printed' });
    return;
  }
  const path = (req.url ?? '/').split('?')[0]!;
  const action = ACTION_PATH.exec(path);
  if (action) {
    await act(req, res, action[1]!, action[2]!, action[3]!, parts);
    return;
  }
  if (path.startsWith('/api/stores/')) {
    req.resume();
    send(res, 404, { ok: false, error: 'no such action: POST /api/stores/<store>/services/<name>/<restart|stop|start>' });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    req.resume();
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, { ok: false, error: `${req.method} is not allowed here` });
    return;
  }
  if (path === '/api/state') {
    parts.sample();
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : parts.state.snapshotJson({ pages: parts.stream.size }));
    return;
  }
  if (path === '/api/events') {
    parts.stream.accept(req, res);
    return;
  }
  const file = parts.files.get(path === '/index.html' ? '/' : path);
  if (!file) {
    send(res, 404, { ok: false, error: `nothing at ${path.slice(0, 100)}` });
    return;
  }
  res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'no-cache' });
  res.end(req.method === 'HEAD' ? undefined : file.body);
}

async function act(req: IncomingMessage, res: ServerResponse, storeId: string, name: string, word: string, parts: ServerParts): Promise<void> {
  req.resume(); // an action has no body: drain whatever came
  if (!isAction(word)) {
    send(res, 404, { ok: false, error: `unknown action '${word}': restart, stop or start` });
    return;
  }
  if (req.method !== 'POST') {
    // Never act on a GET: links, prefetchers and <img> tags must not restart anything.
    res.setHeader('allow', 'POST');
    send(res, 405, { ok: false, error: `${word} needs a POST with the token in the X-Libipc-Token header` });
    return;
  }
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
    send(res, 413, { ok: false, error: 'an action has no body' });
    return;
  }
  if (!sameOrigin(req)) {
    send(res, 403, { ok: false, error: 'cross-origin request refused' });
    return;
  }
  if (!tokenMatches(tokenOf(req), parts.token)) {
    send(res, 403, { ok: false, error: 'a valid token is needed: the one libipc dashboard printed at start (X-Libipc-Token header)' });
    return;
  }
  const from = req.socket.remoteAddress ?? 'unknown';
  const r = await parts.actions.run(storeId, name, word, from);
  send(res, r.status, r.body);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
