import { type RegisterCommand, example } from '../command.js';
import { request } from '../daemon/client.js';
import type { StartOutcome } from '../daemon/handlers.js';
import { EXIT } from '../errors.js';
import { writeLine } from '../io.js';
import { toJson } from '../output.js';

/** `libipc save`, `libipc resurrect`, `libipc flush`: the daemon's service list kept for later, and its logs emptied. */
export const registerSave: RegisterCommand = (program, ctx) => {
  program
    .command('save')
    .description("write the daemon's current service list (specs, and which should run) to its dump, for 'libipc resurrect' and the boot unit")
    .addHelpText('after', example('libipc save'))
    .action(async () => {
      const r = (await request<{ path: string; services: number }>(ctx.io.env, 'save'))!;
      writeLine(ctx.io.stdout, `saved ${r.services} service(s) to ${r.path}`);
    });

  program
    .command('resurrect')
    .description("start what 'libipc save' saved (services already running are left as they are)")
    .option('--json', 'print a JSON array, one object per service started')
    .addHelpText('after', example('libipc resurrect') + '\nExit code: 0 when every saved service is ready, 1 when one failed or nothing was saved.\n')
    .action(async (o: { json?: boolean }) => {
      const { io } = ctx;
      const out = (await request<StartOutcome[]>(io.env, 'resurrect'))!;
      if (o.json) writeLine(io.stdout, toJson(out));
      else for (const s of out) writeLine(io.stdout, s.ok ? `${s.name}: running` : `${s.name}: failed: ${s.message}`);
      if (!o.json && out.length === 0) writeLine(io.stdout, 'nothing was saved running');
      if (out.some((s) => !s.ok)) ctx.exitCode = EXIT.failure;
    });

  program
    .command('flush')
    .description("empty the log files of the daemon's services (current and rotated), of one service or pattern, or of all")
    .argument('[name]', 'a service, an instance or a glob (default: every service)')
    .addHelpText('after', example('libipc flush', 'libipc flush api'))
    .action(async (name: string | undefined) => {
      const r = (await request<string[]>(ctx.io.env, 'flush', name === undefined ? {} : { target: name }))!;
      writeLine(ctx.io.stdout, r.length === 0 ? 'no log files to flush' : `flushed the logs of ${r.join(', ')}`);
    });
};
