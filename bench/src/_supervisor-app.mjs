// The crash → ready benchmark's service: answers a ping on a Unix socket; says READY (LIBIPC_READY_FD) once listening.
import net from 'node:net';
import { rmSync, writeSync } from 'node:fs';

// READY on LIBIPC_READY_FD by hand (what @libipc/process's ready() does), so that this app loads no more code than PM2's.
const ready = () => writeSync(Number(process.env.LIBIPC_READY_FD), 'READY\n');

const path = process.env.BENCH_SOCKET;
rmSync(path, { force: true });
net.createServer((s) => s.on('data', (d) => s.write(d))).listen(path, () => ready());
