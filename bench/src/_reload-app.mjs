// The reload benchmark's app: an ordinary HTTP server on PORT (shared through `listen`, or its own), READY once listening.
import { writeSync } from 'node:fs';
import http from 'node:http';

http.createServer((_req, res) => res.end(String(process.pid))).listen(Number(process.env.PORT), () => writeSync(Number(process.env.LIBIPC_READY_FD), 'READY\n'));
