import { statSync } from 'node:fs';
import { Option } from 'commander';
import { type RegisterCommand, example, intArgument } from '../command.js';
import { specsForEnvironment } from '../config/load-config.js';
import { request } from '../daemon/client.js';
import type { StartOutcome } from '../daemon/handlers.js';
import { daemonHome } from '../daemon/home.js';
import { DAEMON_HEAD, daemonCells } from '../daemon/rows.js';
import { planStart } from '../daemon/start-args.js';
import { EXIT } from '../errors.js';
import { writeLine } from '../io.js';
import { renderTable, toJson } from '../output.js';

interface StartOptions {
  name?: string;
  instances?: number;
  env: string[];
  json?: boolean;
}

const isFile = (p: string) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/** `libipc start`: services handed to the daemon, which keeps them running after this terminal closes. */
export const registerStart: RegisterCommand = (program, ctx) => {
  program
    .command('start')
    .description(
      'start services in the libipc daemon (started on demand), detached from this terminal: all the services of a config file, ' +
        'or one script (.js/.mjs/.cjs, run with this Node) or command; returns when they are ready, or failed (with the reason and the last log lines)',
    )
    .argument('<target>', 'a config file (YAML or JSON), a PM2 ecosystem file (ecosystem.config.js, .cjs, .mjs, .json, .yaml), a script, or a command')
    .argument('[args...]', 'arguments of the script or command (after --)')
    .option('-n, --name <name>', 'the service name (default: the file or command name)')
    .addOption(new Option('-i, --instances <N>', 'run N instances: name.0 … name.N-1').argParser(intArgument(1, 1024)))
    .option(
      '-e, --env <K=V|name>',
      "a script's or command's environment variable K=V (repeat for more); with a config file: the name of its env_<name> blocks to merge over env",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--json', 'print a JSON array, one object per service started')
    .addHelpText(
      'after',
      example('libipc start app.js --name api -i 4', 'libipc start services.yaml', 'libipc start ecosystem.config.js --env production', 'libipc start sleep --name nap -- 600') +
        "\nLogs go to ~/.libipc/logs ($LIBIPC_HOME/logs): 'libipc logs <name>'. Exit code: 0 when every service is ready, 1 when one failed.\n",
    )
    .action(async (target: string, args: string[], o: StartOptions) => {
      const { io, colors: c } = ctx;
      const home = daemonHome(io.env);
      const plan = planStart({ target, args, name: o.name, instances: o.instances, env: o.env }, { cwd: io.cwd, isFile, node: process.execPath, logsDir: home.logs });
      let specs = plan.kind === 'service' ? [plan.spec] : [];
      if (plan.kind === 'config') {
        const loaded = await specsForEnvironment(plan.file, plan.environment, { cwd: io.cwd, defaultLogs: home.logs });
        for (const w of loaded.warnings) io.stderr.write(`libipc start: ${w}\n`);
        specs = loaded.specs;
      }
      const out = (await request<StartOutcome[]>(io.env, 'start', { specs }))!;
      if (o.json) writeLine(io.stdout, toJson(out));
      else {
        const width = Math.max(20, (io.stdout.columns ?? 160) - 90);
        writeLine(io.stdout, renderTable(DAEMON_HEAD, out.flatMap((s) => s.rows.map((r) => daemonCells(r, c, width))), c));
      }
      const failed = out.filter((s) => !s.ok);
      for (const f of failed) {
        io.stderr.write(`libipc start: ${f.name} failed: ${f.message} (${f.code})\n`);
        if (f.lastLines.length > 0) io.stderr.write(`  its last log lines:\n${f.lastLines.map((l) => `    ${l}`).join('\n')}\n`);
        else io.stderr.write(`  it wrote nothing; 'libipc logs ${f.name}' shows what it writes\n`);
      }
      if (failed.length > 0) ctx.exitCode = EXIT.failure;
    });
};
