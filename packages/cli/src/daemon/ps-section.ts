// The daemon's part of `libipc ps`: its services with CPU and memory.
import { existsSync } from 'node:fs';
import type { Io } from '../io.js';
import { writeLine } from '../io.js';
import { renderTable } from '../output.js';
import type { Colors } from '../output.js';
import { request } from './client.js';
import type { DaemonRow } from './handlers.js';
import { daemonHome } from './home.js';
import { DAEMON_HEAD, daemonCells } from './rows.js';

export interface DaemonPs {
  store: string;
  pid: number;
  rows: DaemonRow[];
}

/**
 * The daemon's rows, or undefined when no daemon runs for this home. A daemon that died (its store is there)
 * is started again, adopting what still runs; a home never used gets none.
 */
export async function daemonPs(env: NodeJS.ProcessEnv): Promise<DaemonPs | undefined> {
  const home = daemonHome(env);
  const ping = await request<{ pid: number }>(env, 'ping', {}, { start: existsSync(home.store) });
  if (!ping) return undefined;
  const rows = (await request<DaemonRow[]>(env, 'ps', {}, { start: false })) ?? [];
  return { store: home.store, pid: ping.pid, rows };
}

/** ps --json rows of the daemon: the fields of a run's rows, plus cpu (percent of a core) and rssBytes. */
export function daemonJsonRows(d: DaemonPs): Array<Record<string, unknown>> {
  return d.rows.map((r) => ({ ...r, alive: r.pid !== null && r.rssBytes !== null, store: d.store, manager: { pid: d.pid, alive: true, daemon: true } }));
}

export function printDaemonPs(io: Io, c: Colors, d: DaemonPs): void {
  writeLine(io.stdout, c.dim(`libipc daemon pid ${d.pid} (${d.store})`));
  if (d.rows.length === 0) {
    writeLine(io.stdout, "no services in the daemon ('libipc start <config | script | command>' adds some)");
    return;
  }
  const width = Math.max(20, (io.stdout.columns ?? 160) - 90);
  writeLine(io.stdout, renderTable(DAEMON_HEAD, d.rows.map((r) => daemonCells(r, c, width)), c));
}
