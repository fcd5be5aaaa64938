import { resolve } from 'node:path';
import { type RegisterCommand, example } from '../command.js';
import { writeLine } from '../io.js';
import { formatDuration, renderTable, toJson, truncate } from '../output.js';
import { daemonJsonRows, daemonPs, printDaemonPs } from '../daemon/ps-section.js';
import { reasonText } from '../restart-note.js';
import { listRuns } from '../runs.js';
import { type ServiceRow, type StoreView, readStore } from '../store-view.js';

/** `libipc ps`: the supervisor's services, from a store (or from every `libipc run` of this user). */
export const registerPs: RegisterCommand = (program, ctx) => {
  program
    .command('ps')
    .description("list the supervisor's services: name, state, pid, restarts, uptime, last exit (the daemon's with CPU and memory)")
    .option('-s, --store <path.db>', "a store of 'libipc run --store' (default: every libipc run of this user)")
    .option('--json', 'print a JSON array, one object per service (or instance)')
    .addHelpText('after', example('libipc ps', 'libipc ps --store ./services.db --json'))
    .action(async (o: { store?: string; json?: boolean }) => {
      const { io, colors: c } = ctx;
      const views: StoreView[] = [];
      // The daemon's services (with CPU and memory) when one runs; its run record is then not listed twice.
      const daemon = o.store === undefined ? await daemonPs(io.env) : undefined;
      if (o.store !== undefined) views.push(readStore(resolve(io.cwd, o.store)));
      else for (const run of listRuns(io.env)) {
        if (daemon && run.store === daemon.store) continue;
        try {
          views.push(readStore(run.store));
        } catch {
          // the run ended between the listing and the read
        }
      }
      const rows = [...(daemon ? daemonJsonRows(daemon) : []), ...views.flatMap((v) => v.rows.map((r) => ({ ...r, manager: v.manager })))];
      if (o.json) {
        writeLine(io.stdout, toJson(rows));
        return;
      }
      if (daemon) printDaemonPs(io, c, daemon);
      if (views.length === 0 && !daemon) {
        writeLine(io.stdout, "no libipc run is running for this user (start one with 'libipc run <config>', or name a store with --store)");
        return;
      }
      for (const v of views) {
        if (views.length > 1 || o.store === undefined) {
          const who = v.manager ? `run pid ${v.manager.pid} ${v.manager.alive ? c.green('alive') : c.red('dead')}` : 'no run holds it';
          writeLine(io.stdout, c.dim(`${v.store} (${who})`));
        } else if (v.manager && !v.manager.alive) {
          writeLine(io.stdout, c.yellow(`the libipc run that held this store (pid ${v.manager.pid}) is dead: the next 'libipc run --store' adopts what still runs`));
        }
        if (v.rows.length === 0) {
          writeLine(io.stdout, 'no services in this store');
          continue;
        }
        const width = Math.max(20, (io.stdout.columns ?? 160) - 80);
        writeLine(
          io.stdout,
          renderTable(
            ['NAME', 'STATE', 'PID', 'RESTARTS', 'UPTIME', 'LAST EXIT', 'REASON'],
            v.rows.map((r) => [r.name, stateText({ state: r.shownState }, c), pidText(r, c), String(r.restarts), formatDuration(r.uptimeMs ?? undefined), exitText(r), truncate(r.note ?? reasonText(r.shownState, r.reason, r.lastRestart), width)]),
            c,
          ),
        );
      }
    });
};

type Colors = { green(s: string): string; red(s: string): string; yellow(s: string): string; dim(s: string): string };

export function stateText(r: Pick<ServiceRow, 'state'>, c: Colors): string {
  const s = r.state;
  return s === 'running' ? c.green(s) : s === 'failed' || s === 'gone' ? c.red(s) : s === 'stopped' || s === 'exited' ? c.dim(s) : c.yellow(s);
}

function pidText(r: ServiceRow, c: Colors): string {
  if (r.pid === null) return '-';
  return r.alive ? String(r.pid) : `${r.pid} ${c.red('(dead)')}`;
}

export function exitText(r: Pick<ServiceRow, 'lastExit'>): string {
  const e = r.lastExit;
  if (!e) return '-';
  return e.signal ? e.signal : e.code === null ? 'unknown' : `code ${e.code}`;
}
