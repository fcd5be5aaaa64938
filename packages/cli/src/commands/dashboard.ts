import { type RegisterCommand, example, intArgument, nameArgument, untilAborted } from '../command.js';
import { isLoopback } from '../dashboard/access.js';
import { startDashboard } from '../dashboard/dashboard.js';
import { UsageError } from '../errors.js';
import { writeLine } from '../io.js';

interface DashboardFlags {
  port: number;
  host: string;
  store?: string;
  domain?: string;
  token?: string;
}

/** `libipc dashboard`: a live web page of registries, groups, supervisor services and channels. */
export const registerDashboard: RegisterCommand = (program, ctx) => {
  program
    .command('dashboard')
    .description(
      'serve a live web page of registry entries, groups (primary, failovers), supervisor services (restart/stop) and channels; ' +
        'listens on 127.0.0.1 and prints its URL and the token that restart/stop need; Ctrl-C to stop',
    )
    .option('-p, --port <port>', 'port to listen on (0: a free one, printed)', intArgument(0, 65_535), 0)
    .option('--host <address>', 'address to listen on; anything but a loopback address needs --token', '127.0.0.1')
    .option('-s, --store <path.db>', "the store of a 'libipc run --store' (default: every libipc run of this user)")
    .option('-d, --domain <domain>', 'only this registry domain (default: every domain, and new ones as they appear)', nameArgument('domain'))
    .option('-t, --token <token>', 'the token restart/stop need (default: a fresh random one, printed)')
    .addHelpText(
      'after',
      example('libipc dashboard', 'libipc dashboard --store ./services.db --domain audio --port 8080') +
        '\nSecurity: it listens on 127.0.0.1 unless --host says otherwise, and then only with a --token. Pages only read;\n' +
        'restart and stop are POSTs from the page itself (same origin) with the token in a header, never through a link.\n',
    )
    .action(async (o: DashboardFlags) => {
      const { io } = ctx;
      if (o.token !== undefined && !/^[\x21-\x7e]{1,512}$/.test(o.token)) {
        throw new UsageError('--token must be 1-512 visible ASCII characters (no spaces)');
      }
      if (!isLoopback(o.host) && o.token === undefined) {
        throw new UsageError(
          `--host ${o.host} lets other machines reach the dashboard: give it a --token too (a long random one), or leave --host at 127.0.0.1`,
        );
      }
      const dashboard = await startDashboard({ port: o.port, host: o.host, store: o.store, domain: o.domain, token: o.token, env: io.env, cwd: io.cwd });
      try {
        writeLine(io.stdout, `libipc dashboard: ${dashboard.url}`);
        writeLine(io.stdout, `token: ${dashboard.token}`);
        writeLine(io.stdout, ctx.colors.dim(`open ${dashboard.url}#token=${dashboard.token} to restart and stop services from the page; Ctrl-C to stop`));
        await untilAborted(ctx.signal);
      } finally {
        await dashboard.close();
      }
      writeLine(io.stdout, 'libipc dashboard: stopped');
    });
};
