// Pure: the daemon's rows as `libipc ps` and `libipc start` print them.
import { formatBytes, formatDuration, truncate } from '../output.js';
import { reasonText } from '../restart-note.js';
import type { DaemonRow } from './handlers.js';

type Colors = { green(s: string): string; red(s: string): string; yellow(s: string): string; dim(s: string): string };

export const DAEMON_HEAD = ['NAME', 'STATE', 'PID', 'CPU', 'MEM', 'RESTARTS', 'UPTIME', 'REASON'];

export function cpuText(cpu: number | null): string {
  return cpu === null ? '-' : `${cpu < 10 ? cpu.toFixed(1) : Math.round(cpu)}%`;
}

export function memText(rss: number | null): string {
  return rss === null ? '-' : formatBytes(rss);
}

function stateText(s: string, c: Colors): string {
  return s === 'running' ? c.green(s) : s === 'failed' ? c.red(s) : s === 'stopped' || s === 'exited' ? c.dim(s) : c.yellow(s);
}

export function daemonCells(r: DaemonRow, c: Colors, reasonWidth: number): string[] {
  const running = r.state === 'running' || r.state === 'starting' || r.state === 'stopping';
  return [
    r.name,
    stateText(r.state, c),
    r.pid === null || !running ? '-' : String(r.pid),
    running ? cpuText(r.cpu) : '-',
    running ? memText(r.rssBytes) : '-',
    String(r.restarts),
    running ? formatDuration(r.uptimeMs) : '-',
    truncate(reasonText(r.state, r.reason, r.lastRestart), reasonWidth),
  ];
}
