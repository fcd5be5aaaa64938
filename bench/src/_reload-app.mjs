// The reload benchmark's app: an ordinary HTTP server on PORT (shared through `listen`, its own, or PM2 cluster mode), ready once listening.
import { writeSync } from 'node:fs';
import http from 'node:http';

// Under PM2 (no LIBIPC_READY_FD): `wait_ready` apps say ready with process.send('ready').
const ready = () => (process.env.LIBIPC_READY_FD ? writeSync(Number(process.env.LIBIPC_READY_FD), 'READY\n') : process.send?.('ready'));
http.createServer((_req, res) => res.end(String(process.pid))).listen(Number(process.env.PORT), ready);
