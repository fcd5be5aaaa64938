import { Option } from 'commander';
import { type RegisterCommand, example, intArgument } from '../command.js';
import { statSync } from 'node:fs';
import { InvalidArgumentError } from '@libipc/shm';
import { specsForEnvironment } from '../config/load-config.js';
import { request } from '../daemon/client.js';
import { daemonHome } from '../daemon/home.js';
import type { ReloadOutcome } from '../daemon/handlers.js';
import { EXIT } from '../errors.js';
import { writeLine } from '../io.js';
import { toJson } from '../output.js';

/** The lines `libipc reload` prints for one outcome: what was replaced, started, left alone. */
export function reloadLines(o: ReloadOutcome): string[] {
  const lines = o.replaced.map((r) => `${r.name}: pid ${r.oldPid ?? '-'} → pid ${r.newPid}`);
  if (o.started.length > 0) lines.push(`${o.name} was stopped: started ${o.started.join(', ')}`);
  for (const s of o.skipped) lines.push(`${s.name}: left as it is (${s.reason})`);
  if (o.ok && lines.length === 0) lines.push(`${o.name}: nothing to reload`);
  return lines;
}

/** `libipc reload <name | pattern …>`: zero-downtime restart of the daemon's services, instance by instance. */
export const registerReload: RegisterCommand = (program, ctx) => {
  program
    .command('reload')
    .description(
      'restart services of the daemon without downtime: each instance gets a new process from the current spec, ready before its old one ' +
        'is stopped (dependents are not restarted); a replacement that does not get ready stops the reload and the old instances keep serving',
    )
    .argument('<targets...>', "service names, globs ('web*', quoted) or all; or the config file the services came from (with --env)")
    .option('--env <name>', "with a config file: its env_<name> blocks over env, for the new processes (the file's services are reloaded)")
    .addOption(new Option('--min-available <N>', 'instances that stay ready throughout (default N-1: one replaced at a time)').argParser(intArgument(0, 10_000)))
    .option('--json', 'print a JSON array, one object per service reloaded')
    .addHelpText(
      'after',
      example('libipc reload web', "libipc reload 'api*' --min-available 2", 'libipc reload all', 'libipc reload ecosystem.config.js --env production') +
        '\nA service with `listen` keeps its port open throughout: no connection is lost. Exit code: 0 when everything was replaced, 1 when a replacement failed.\n',
    )
    .action(async (targets: string[], o: { minAvailable?: number; json?: boolean; env?: string }) => {
      const { io } = ctx;
      const file = targets.length === 1 && isFile(targets[0]!, io.cwd) ? targets[0]! : undefined;
      if (o.env !== undefined && file === undefined) {
        // The daemon keeps each service's spec, not the env_<name> blocks of the file it came from.
        throw new InvalidArgumentError(`--env needs the config file the services came from: libipc reload <file> --env ${o.env}`);
      }
      const min = o.minAvailable === undefined ? {} : { minAvailable: o.minAvailable };
      let args: Record<string, unknown> = { targets, ...min };
      if (file !== undefined) {
        const loaded = await specsForEnvironment(file, o.env, { cwd: io.cwd, defaultLogs: daemonHome(io.env).logs });
        for (const w of loaded.warnings) io.stderr.write(`libipc reload: ${w}\n`);
        args = { specs: loaded.specs, ...min };
      }
      const out = (await request<ReloadOutcome[]>(io.env, 'reload', args))!;
      if (o.json) writeLine(io.stdout, toJson(out));
      else for (const line of out.flatMap(reloadLines)) writeLine(io.stdout, line);
      for (const f of out.filter((x) => !x.ok)) {
        io.stderr.write(`libipc reload: ${f.name} failed: ${f.message} (${f.code})\n`);
        ctx.exitCode = EXIT.failure;
      }
    });
};

function isFile(path: string, cwd: string): boolean {
  try {
    return statSync(path.startsWith('/') ? path : `${cwd}/${path}`).isFile();
  } catch {
    return false;
  }
}
