// The same service under PM2: answers a ping on a Unix socket.
import net from 'node:net';
import { rmSync } from 'node:fs';

const path = process.env.BENCH_SOCKET;
rmSync(path, { force: true });
net.createServer((s) => s.on('data', (d) => s.write(d))).listen(path);
