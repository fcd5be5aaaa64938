import { type RegisterCommand, example } from '../command.js';
import { request } from '../daemon/client.js';
import type { DaemonRow } from '../daemon/handlers.js';
import { DAEMON_HEAD, daemonCells } from '../daemon/rows.js';
import { writeLine } from '../io.js';
import { renderTable, toJson } from '../output.js';

const ACTIONS = [
  { cmd: 'stop', verb: 'stop', what: 'stop services of the daemon (what depends on them first); they stay known: start or restart them again', eg: ["libipc stop api", "libipc stop 'worker*'", 'libipc stop all'] },
  { cmd: 'restart', verb: 'restart', what: 'restart services of the daemon in dependency order (dependents restarted after what they depend on)', eg: ['libipc restart api', 'libipc restart all'] },
  { cmd: 'delete', verb: 'delete', what: 'stop services of the daemon and forget them (dependents must be deleted with them or first)', eg: ['libipc delete api', "libipc delete 'worker*'"] },
] as const;

/** `libipc stop|restart|delete <name | pattern …>`: the daemon's services by name, glob or `all`. */
export const registerControl: RegisterCommand = (program, ctx) => {
  for (const a of ACTIONS) {
    program
      .command(a.cmd)
      .description(a.what)
      .argument('<targets...>', "service or instance names, globs ('worker*', quoted) or all")
      .option('--json', 'print a JSON array of what was acted on')
      .addHelpText('after', example(...a.eg) + '\nExit code: 0 when done, 1 when a name matches nothing (nothing is done then) or the daemon refused.\n')
      .action(async (targets: string[], o: { json?: boolean }) => {
        const { io, colors: c } = ctx;
        const r = (await request<DaemonRow[] | string[]>(io.env, a.cmd, { targets }))!;
        if (o.json) {
          writeLine(io.stdout, toJson(r));
          return;
        }
        if (r.length === 0) writeLine(io.stdout, `nothing to ${a.verb}`);
        else if (typeof r[0] === 'string') writeLine(io.stdout, `deleted ${(r as string[]).join(', ')}`);
        else writeLine(io.stdout, renderTable(DAEMON_HEAD, (r as DaemonRow[]).map((row) => daemonCells(row, c, 60)), c));
      });
  }
};
