import { type RegisterCommand, example } from '../command.js';
import { request } from '../daemon/client.js';
import { READY_FD_ENV, runDaemon } from '../daemon/daemon.js';
import { daemonLogger } from '../daemon/daemon-log.js';
import { daemonHome } from '../daemon/home.js';
import { writeLine } from '../io.js';
import { formatDuration, toJson } from '../output.js';
import { watchExit } from '@libipc/shm';

interface PingResult {
  version: string;
  pid: number;
  home: string;
  startedAt: number;
  services: number;
}

/** `libipc daemon`, `libipc ping`, `libipc kill-daemon`: the per-user daemon that keeps services after the terminal. */
export const registerDaemon: RegisterCommand = (program, ctx) => {
  program
    .command('daemon')
    .description(
      'run the per-user libipc daemon in the foreground (the other commands start it on demand, detached): it keeps the services of ' +
        "'libipc start' running after the terminal closes; its socket, pid file, store, dump and logs are in $LIBIPC_HOME or ~/.libipc",
    )
    .option('--resurrect', "start what 'libipc save' saved (what the boot unit of 'libipc startup' runs)")
    .addHelpText('after', example('libipc daemon --resurrect') + '\nExit code: 0 when it stopped when asked (or another daemon already runs for this home), 1 otherwise.\n')
    .action(async (o: { resurrect?: boolean }) => {
      const { io } = ctx;
      const fd = io.env[READY_FD_ENV] === undefined ? undefined : Number(io.env[READY_FD_ENV]);
      // Not passed on to the services the daemon starts.
      delete io.env[READY_FD_ENV];
      if (io.env === process.env) delete process.env[READY_FD_ENV];
      await runDaemon({
        env: io.env,
        resurrect: o.resurrect === true,
        signal: ctx.signal,
        readyFd: fd,
        log: daemonLogger(io.stdout),
      });
    });

  program
    .command('ping')
    .description('tell whether the libipc daemon runs (its pid, version and uptime); starts none')
    .option('--json', 'print a JSON object')
    .addHelpText('after', example('libipc ping', 'libipc ping --json') + '\nExit code: 0 when a daemon answers, 1 when none runs.\n')
    .action(async (o: { json?: boolean }) => {
      const { io } = ctx;
      const r = await request<PingResult>(io.env, 'ping', {}, { start: false });
      if (o.json) writeLine(io.stdout, toJson(r ? { running: true, ...r } : { running: false, home: daemonHome(io.env).dir }));
      else if (r) writeLine(io.stdout, `libipc daemon ${r.version} is up: pid ${r.pid}, for ${formatDuration(Date.now() - r.startedAt)}, ${r.services} service(s), home ${r.home}`);
      else writeLine(io.stdout, `no libipc daemon runs for ${daemonHome(io.env).dir} (any of start, stop, ps… starts one)`);
      if (!r) ctx.exitCode = 1;
    });

  program
    .command('kill-daemon')
    .description('stop every service of the daemon (dependents first, recorded as stopped), then the daemon itself')
    .addHelpText('after', example('libipc kill-daemon') + "\nWhat was saved with 'libipc save' comes back with 'libipc resurrect'.\n")
    .action(async () => {
      const { io } = ctx;
      const r = await request<{ stopped: number; pid: number }>(io.env, 'kill', {}, { start: false });
      if (!r) {
        writeLine(io.stdout, `no libipc daemon runs for ${daemonHome(io.env).dir}`);
        return;
      }
      // Returns once the daemon is gone: a command right after starts a new one, never talks to this one.
      await watchExit(r.pid);
      writeLine(io.stdout, `stopped ${r.stopped} service(s) and the libipc daemon (pid ${r.pid})`);
    });
};
