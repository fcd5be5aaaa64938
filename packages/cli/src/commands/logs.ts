import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { IllegalStateError, NotFoundError } from '@libipc/shm';
import type { ServiceSpec } from '@libipc/supervisor';
import { type RegisterCommand, example, intArgument, untilAborted } from '../command.js';
import { writeLine } from '../io.js';
import { follow, lastLines, logFile, mergeByTime } from '../log-files.js';
import { listRuns } from '../runs.js';
import { readStore } from '../store-view.js';

interface LogsOptions {
  lines: number;
  follow?: boolean;
  store?: string;
  dir?: string;
}

/** `libipc logs <name>`: a service's log files (timestamped lines), the last ones and, with --follow, new ones. */
export const registerLogs: RegisterCommand = (program, ctx) => {
  program
    .command('logs')
    .description("print a service's log lines (stdout and stderr merged by time); a service with instances shows all of them")
    .argument('<name>', 'a service (all its instances) or one instance, e.g. worker.1')
    .option('-n, --lines <N>', 'how many of the last lines', intArgument(0, 1_000_000), 100)
    .option('-f, --follow', 'keep printing new lines as they are written (Ctrl-C to stop)')
    .option('-s, --store <path.db>', "find the service in this store of 'libipc run --store' (default: every libipc run of this user)")
    .option('--dir <folder>', 'read the log files in this folder instead')
    .addHelpText('after', example('libipc logs api --lines 20', 'libipc logs worker --follow --store ./services.db'))
    .action(async (name: string, o: LogsOptions) => {
      const { io } = ctx;
      const found = o.dir !== undefined ? { dir: resolve(io.cwd, o.dir), keep: 1000, names: [name] } : locate(name, o.store ? resolve(io.cwd, o.store) : undefined, io.env);
      const files = found.names.flatMap((n) => (['stdout', 'stderr'] as const).map((s) => ({ label: n, path: logFile(found.dir, n, s) })));
      if (o.dir !== undefined && !files.some((f) => existsSync(f.path))) {
        throw new NotFoundError(`no log files of '${name}' in ${found.dir} (looked for ${name}.stdout.log and ${name}.stderr.log)`);
      }
      const many = found.names.length > 1;
      const show = (label: string, line: string) => writeLine(io.stdout, many ? `${label} | ${line}` : line);
      const last = mergeByTime(
        files.map((f) => ({ label: f.label, lines: lastLines(f.path, o.lines, found.keep) })),
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

/** Where a service's logs are: its spec's logs.dir, from the store given or from this user's runs. */
function locate(name: string, store: string | undefined, env: NodeJS.ProcessEnv): { dir: string; keep: number; names: string[] } {
  const stores = store !== undefined ? [store] : listRuns(env).reverse().map((r) => r.store);
  if (stores.length === 0) {
    throw new NotFoundError("no libipc run is running for this user; name its store with --store, or the log folder with --dir");
  }
  for (const path of stores) {
    let specs: ServiceSpec[];
    try {
      specs = readStore(path).specs;
    } catch (err) {
      if (store !== undefined) throw err;
      continue;
    }
    const spec = specs.find((s) => s.name === name || (s.instances !== undefined && name.startsWith(`${s.name}.`) && Number(name.slice(s.name.length + 1)) < s.instances));
    if (!spec) continue;
    const logs = spec.logs ?? 'inherit';
    if (typeof logs === 'string') {
      throw new IllegalStateError(`${name} does not log to files (logs: '${logs}'); give it logs: { dir } in its config to read its output back`);
    }
    const names = spec.name === name && spec.instances !== undefined ? Array.from({ length: spec.instances }, (_, i) => `${name}.${i}`) : [name];
    return { dir: logs.dir, keep: logs.keep ?? 5, names };
  }
  throw new NotFoundError(`no service named '${name}' in ${store ?? "this user's libipc runs"}; 'libipc ps' lists them`);
}
