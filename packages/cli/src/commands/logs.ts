import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { NotFoundError } from '@libipc/shm';
import { type RegisterCommand, example, intArgument, untilAborted } from '../command.js';
import { writeLine } from '../io.js';
import { UsageError } from '../errors.js';
import { type Stream, follow, lastLines, logFile, mergeByTime } from '../log-files.js';
import { type StoreSpecs, selectLogs } from '../log-select.js';
import { listRuns } from '../runs.js';
import { readStore } from '../store-view.js';

interface LogsOptions {
  lines: number;
  follow?: boolean;
  store?: string;
  dir?: string;
  err?: boolean;
}

/** `libipc logs [name]`: log files (timestamped lines) of a service, of a glob's services, or of all; the last ones and, with --follow, new ones. */
export const registerLogs: RegisterCommand = (program, ctx) => {
  program
    .command('logs')
    .description("print log lines (stdout and stderr merged by time) of a service, of every service a glob matches, or of all; a service with instances shows all of them")
    .argument('[name]', "a service (all its instances), one instance (worker.1), a glob ('web-*'), or nothing for all; '<store>:<name>' picks a run's store when two have the name")
    .option('-n, --lines <N>', 'how many of the last lines', intArgument(0, 1_000_000), 100)
    .option('-f, --follow', 'keep printing new lines as they are written (Ctrl-C to stop)')
    .option('--err', 'stderr only')
    .option('-s, --store <path>', "find the service in this store of 'libipc run --store' (default: every libipc run of this user)")
    .option('--dir <folder>', 'read the log files in this folder instead')
    .addHelpText('after', example('libipc logs', "libipc logs api --lines 20 --err", "libipc logs 'worker.*' --follow --store ./services.db", 'libipc logs services:api'))
    .action(async (name: string | undefined, o: LogsOptions) => {
      const { io } = ctx;
      const streams: Stream[] = o.err ? ['stderr'] : ['stdout', 'stderr'];
      let targets: Array<{ label: string; dir: string; name: string; keep: number }>;
      if (o.dir !== undefined) {
        if (name === undefined) throw new UsageError('--dir needs the name of the service whose files to read');
        targets = [{ label: name, dir: resolve(io.cwd, o.dir), name, keep: 1000 }];
      } else {
        targets = selectLogs(name, storesOf(o.store ? resolve(io.cwd, o.store) : undefined, io.env));
      }
      const files = targets.flatMap((t) => streams.map((s) => ({ label: t.label, path: logFile(t.dir, t.name, s), keep: t.keep })));
      if (o.dir !== undefined && !files.some((f) => existsSync(f.path))) {
        throw new NotFoundError(`no log files of '${name}' in ${targets[0]!.dir} (looked for ${streams.map((s) => `${name}.${s}.log`).join(' and ')})`);
      }
      const many = targets.length > 1;
      const show = (label: string, line: string) => writeLine(io.stdout, many ? `${label} | ${line}` : line);
      const last = mergeByTime(
        files.map((f) => ({ label: f.label, lines: lastLines(f.path, o.lines, f.keep) })),
        o.lines,
      );
      // Subscribed before the last lines are printed: nothing written in between is lost.
      const stop = o.follow ? follow(files, show) : undefined;
      for (const l of last) show(l.label, l.line);
      if (!stop) return;
      await untilAborted(ctx.signal);
      stop();
    });
};

/** The stores to look in: the one given, or those of this user's runs (newest first). */
function storesOf(store: string | undefined, env: NodeJS.ProcessEnv): StoreSpecs[] {
  const paths = store !== undefined ? [store] : listRuns(env).reverse().map((r) => r.store);
  if (paths.length === 0) {
    throw new NotFoundError('no libipc run is running for this user; name its store with --store, or the log folder with --dir');
  }
  const out: StoreSpecs[] = [];
  for (const path of paths) {
    try {
      out.push({ store: path, specs: readStore(path).specs });
    } catch (err) {
      if (store !== undefined) throw err;
      // the run ended between the listing and the read
    }
  }
  return out;
}
