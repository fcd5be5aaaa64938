import { join, resolve } from 'node:path';
import { type RegisterCommand, example, untilAborted } from '../command.js';
import { loadConfigFile } from '../config/load-config.js';
import { ControlServer } from '../control/control-server.js';
import { EXIT } from '../errors.js';
import { PlainView } from '../run/plain-view.js';
import { RunSession } from '../run/session.js';
import { startSummary } from '../run/start-summary.js';
import { StatusTable } from '../run/status-table.js';
import type { RunView } from '../run/view.js';
import { runtimeDir, selfRecord } from '../runs.js';
import { defaultStoreExtension } from '../store-file.js';

/** `libipc run <file>`: the services of a config file, in the foreground, until Ctrl-C. */
export const registerRun: RegisterCommand = (program, ctx) => {
  program
    .command('run')
    .description(
      'run the services of a config file (YAML or JSON, or a PM2 ecosystem file) in the foreground: a live table on a terminal, plain lines otherwise; ' +
        'Ctrl-C stops them in reverse dependency order (twice: kill them)',
    )
    .argument('<file>', 'the config file: services with command, args, env, cwd, instances, restart, dependsOn, readiness, logs; or a PM2 ecosystem file (ecosystem.config.js, .cjs, .mjs, .json, .yaml)')
    .option('--env <name>', "merge the file's env_<name> blocks over env (top level, then each service's)")
    .option('-s, --store <path>', 'keep the services in this file (path.db: SQLite, path.json: JSON, no SQLite needed): a run started after a crash adopts what still runs instead of starting it twice')
    .addHelpText(
      'after',
      example('libipc run examples/libipc.yaml', 'libipc run services.yaml --store ./services.db', 'libipc run ecosystem.config.js --env production') +
        '\nExit code: 0 when every service started and stopped cleanly when asked, 1 otherwise (a service could not start — the run then stops the rest and ends —, failed, needed SIGKILL, or a config error).\n',
    )
    .action(async (file: string, o: { store?: string; env?: string }) => {
      const { io } = ctx;
      const dir = runtimeDir(io.env);
      const ephemeral = o.store === undefined;
      // A private JSON store is not named run-<pid>.json: that is the run's record in the same folder.
      const storePath = ephemeral ? join(dir, `run-${process.pid}${defaultStoreExtension() === '.db' ? '.db' : '.store.json'}`) : resolve(io.cwd, o.store!);
      // Without --store: a private log folder that goes with the run; with one: beside it, kept for the next run.
      const defaultLogs = ephemeral ? join(dir, `run-${process.pid}.logs`) : `${storePath.replace(/\.[^./]*$/, '')}.logs`;
      const config = await loadConfigFile(file, { cwd: io.cwd, defaultLogs, environment: o.env });
      for (const w of config.warnings) io.stderr.write(`libipc run: ${w}\n`);
      const session = RunSession.open({ config, storePath, ephemeral, defaultLogs, runtimeDir: dir, record: selfRecord(config.file, storePath, ephemeral) });
      let view: RunView | undefined;
      let control: ControlServer | undefined;
      try {
        const names = [...new Set([...session.names(), ...config.specs.flatMap((s) => (s.instances ? Array.from({ length: s.instances }, (_, i) => `${s.name}.${i}`) : [s.name]))])];
        view = io.stdout.isTTY ? new StatusTable(io, ctx.colors) : new PlainView(io, ctx.colors, names);
        const footer = () => (ctx.signal.aborted ? 'stopping (dependents first); Ctrl-C again to kill' : `libipc run ${file}: Ctrl-C stops everything`);
        const started = session.start(view, footer);
        // After start(): it listens to the manager's first events in this tick. `libipc dashboard --store` asks
        // this run to restart/stop services through a socket beside the store.
        control = await ControlServer.listen(storePath, session.manager, { env: io.env, onRequest: (r) => view?.event('libipc', `dashboard asks: ${r.action} ${r.name}`) }).catch(
          (err: Error) => void view?.event('libipc', `no dashboard control socket: ${err.message}`, 'warn'),
        );
        // Ctrl-C while starting stops too: whatever started is stopped.
        const failures = await Promise.race([started.catch((err: Error) => new Map([['libipc', err.message]])), untilAborted(ctx.signal).then(() => undefined)]);
        let gaveUp = false;
        if (!ctx.signal.aborted && failures) {
          const summary = startSummary(session.manager.statusAll(), failures);
          view.event('libipc', summary.message, summary.ok ? 'plain' : 'bad');
          // As docker compose up: a service that must start and cannot ends the run, non-zero.
          gaveUp = !summary.ok;
          if (!gaveUp) await untilAborted(ctx.signal);
        }
        view.update(() => session.manager.statusAll(), footer());
        view.event('libipc', gaveUp ? 'stopping what started, dependents first' : 'stopping everything, dependents first (Ctrl-C again to kill)', 'warn');
        const problems = await session.stop(ctx.force);
        await started.catch(() => undefined);
        if (gaveUp) {
          view.event('libipc', 'not every service could start', 'bad');
          ctx.exitCode = EXIT.failure;
        } else if (problems.length > 0) {
          for (const p of problems) view.event('libipc', p, 'bad');
          view.event('libipc', 'not everything stopped cleanly', 'bad');
          ctx.exitCode = EXIT.failure;
        } else {
          view.event('libipc', 'everything stopped cleanly', 'good');
        }
      } finally {
        await control?.close();
        view?.close();
        session.close();
      }
    });
};
