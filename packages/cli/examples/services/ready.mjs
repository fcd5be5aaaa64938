// The readiness contract of libipc's supervisor, without importing anything: write READY to LIBIPC_READY_FD.
import { closeSync, writeSync } from 'node:fs';

export function ready() {
  const fd = Number(process.env.LIBIPC_READY_FD);
  if (!Number.isInteger(fd) || fd < 0) return; // started by hand
  writeSync(fd, 'READY\n');
  closeSync(fd);
}

/** Exit cleanly on SIGTERM (what `libipc run` sends on Ctrl-C), saying so. */
export function stopOnSigterm(name, cleanup = () => {}) {
  process.on('SIGTERM', () => {
    console.log(`${name} stopping`);
    cleanup();
    process.exit(0);
  });
}
