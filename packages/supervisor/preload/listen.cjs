'use strict';
// Preloaded (NODE_OPTIONS=--require …/listen.cjs) into the instances of a libipc service with `listen`. The
// supervisor opened each port once and handed the socket over as an fd (LIBIPC_LISTEN_FDS="3000:4,3001:5"):
// - server.listen(3000) (any form naming that port) listens on the inherited fd instead, so the app needs no
//   change and every instance accepts from the one queue the supervisor owns;
// - on SIGTERM, when the app has no SIGTERM listener of its own, those servers stop accepting, finish the
//   requests in flight and the process exits 0 (the supervisor's stop timeout is the backstop). What is still
//   queued is accepted by the other instances: nothing is dropped.
// Plain CommonJS with no dependencies: it runs before the app, in any Node version the app uses.
const fs = require('node:fs');
const net = require('node:net');

/** "3000:4,3001:5" → Map(port → fd). Malformed entries are skipped: the app starts as if they were absent. */
function parseListenFds(value) {
  const out = new Map();
  if (typeof value !== 'string') return out;
  for (const part of value.split(',')) {
    const m = /^\s*(\d{1,5}):(\d{1,9})\s*$/.exec(part);
    if (!m) continue;
    const port = Number(m[1]);
    const fd = Number(m[2]);
    if (port >= 1 && port <= 65535 && fd >= 3 && !out.has(port)) out.set(port, fd);
  }
  return out;
}

/** The TCP port a listen() call asks for, or undefined (a path, a handle, an fd, port 0 or none). */
function requestedPort(args) {
  const a = args[0];
  let p;
  if (typeof a === 'number' || (typeof a === 'string' && /^\d+$/.test(a))) p = Number(a);
  else if (a !== null && typeof a === 'object' && !Array.isArray(a) && a.fd === undefined && a.path === undefined && a.handle === undefined && a._handle === undefined) {
    p = a.port === undefined ? undefined : Number(a.port);
  }
  return Number.isInteger(p) && p > 0 ? p : undefined;
}

function isSocket(fd) {
  try {
    return fs.fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

const fds = parseListenFds(process.env.LIBIPC_LISTEN_FDS);
// Our descendants did not inherit these fds: they must not try them.
delete process.env.LIBIPC_LISTEN_FDS;

const servers = new Map(); // server → { sockets: Map<socket, active requests>, served: WeakSet<socket> }
let draining = false;

function track(server) {
  const st = { sockets: new Map(), served: new WeakSet() };
  servers.set(server, st);
  server.on('connection', (socket) => {
    st.sockets.set(socket, 0);
    socket.once('close', () => st.sockets.delete(socket));
  });
  // HTTP (and anything emitting 'request' the same way): a request in flight keeps its socket open.
  // First in line (prepend): shouldKeepAlive must be set before the app's handler answers.
  server.prependListener('request', (req, res) => {
    const socket = req.socket;
    st.sockets.set(socket, (st.sockets.get(socket) ?? 0) + 1);
    st.served.add(socket);
    if (draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      const left = (st.sockets.get(socket) ?? 1) - 1;
      if (st.sockets.has(socket)) st.sockets.set(socket, left);
      // A keep-alive connection left idle while draining would hold the exit until the stop timeout.
      if (draining && left === 0) socket.end();
    });
  });
  if (servers.size === 1) process.on('SIGTERM', onSigterm);
}

function onSigterm() {
  // The app handles SIGTERM itself: its listener decides, not ours.
  if (process.listenerCount('SIGTERM') > 1 || draining) return;
  draining = true;
  let open = servers.size;
  const closed = () => {
    if (--open === 0) process.exit(0);
  };
  for (const [server, st] of servers) {
    // net's close, not http's: Node ≥ 19's http close also ends "idle" connections, and one just accepted
    // whose request is not read yet counts as idle — its client would see a reset.
    if (server.listening) net.Server.prototype.close.call(server, closed);
    else closed();
    for (const [socket, active] of st.sockets) if (active === 0 && st.served.has(socket)) socket.end();
  }
}

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function libipcListen(...args) {
  const port = requestedPort(args);
  const fd = port === undefined ? undefined : fds.get(port);
  if (fd === undefined || !isSocket(fd)) return listen.apply(this, args);
  // One server per inherited socket: a second listen(port) in this process is an ordinary one.
  fds.delete(port);
  track(this);
  const last = args[args.length - 1];
  const cb = typeof last === 'function' ? [last] : [];
  return listen.call(this, { fd }, ...cb);
};

module.exports = { parseListenFds, requestedPort };
