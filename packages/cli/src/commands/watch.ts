import { watch as watchDir } from 'node:fs';
import { type RegistryChange, ServiceRegistry } from '@libipc/registry';
import { watchExit } from '@libipc/shm';
import { type RegisterCommand, example, nameArgument, untilAborted } from '../command.js';
import { domainsFor } from '../domains.js';
import { writeLine } from '../io.js';
import { toJson } from '../output.js';
import { clock } from '../run/view.js';

/**
 * `libipc watch`: registry changes as they happen. It joins each domain like any registry user (a watcher
 * sleeps on the domain's change counter: no polling), and watches each registered process's exit (pidfd), so
 * a crash shows at once even though its entry stays until someone calls gc.
 */
export const registerWatch: RegisterCommand = (program, ctx) => {
  program
    .command('watch')
    .description('stream registry changes as they happen (registered, unregistered, removed-dead, died); Ctrl-C to stop')
    .option('-d, --domain <domain>', 'only this domain (default: every domain, and new ones as they appear)', nameArgument('domain'))
    .option('--json', 'print one JSON object per line')
    .addHelpText('after', example('libipc watch', 'libipc watch --domain audio --json'))
    .action(async (o: { domain?: string; json?: boolean }) => {
      const { io, colors: c } = ctx;
      const stop = new AbortController();
      ctx.signal.addEventListener('abort', () => stop.abort(), { once: true });
      if (ctx.signal.aborted) stop.abort();
      const registries = new Map<string, ServiceRegistry>();
      const exits = new Map<string, AbortController>();
      const tasks: Array<Promise<void>> = [];

      const print = (domain: string, type: string, e: RegistryChange['entry']) => {
        if (o.json) {
          writeLine(io.stdout, JSON.stringify(JSON.parse(toJson({ time: new Date().toISOString(), domain, type, name: e.name, pid: e.pid, controlChannel: e.controlChannel, replyChannel: e.replyChannel }))));
          return;
        }
        const paint = type === 'registered' || type === 'present' ? c.green : type === 'unregistered' ? c.yellow : c.red;
        writeLine(io.stdout, `${c.dim(clock())} ${domain} ${paint(type.padEnd(12))} ${e.name} pid ${e.pid}`);
      };
      const watchPid = (domain: string, e: RegistryChange['entry']) => {
        const key = `${domain}/${e.name}`;
        exits.get(key)?.abort();
        const ac = new AbortController();
        exits.set(key, ac);
        watchExit(e.pid, e.startTime, { signal: ac.signal, ref: false }).then(
          () => {
            if (!ac.signal.aborted) print(domain, 'died', e);
          },
          () => undefined,
        );
      };
      const follow = (domain: string) => {
        if (registries.has(domain) || stop.signal.aborted) return;
        const registry = new ServiceRegistry(domain);
        registries.set(domain, registry);
        const changes = registry.watch({ signal: stop.signal });
        // list() after watch(): the state the changes apply to.
        for (const e of registry.list()) {
          print(domain, 'present', e);
          watchPid(domain, e);
        }
        tasks.push(
          (async () => {
            for await (const change of changes) {
              print(domain, change.type, change.entry);
              if (change.type === 'registered') watchPid(domain, change.entry);
              else exits.get(`${domain}/${change.entry.name}`)?.abort();
            }
          })(),
        );
      };

      let dirWatcher: ReturnType<typeof watchDir> | undefined;
      try {
        if (o.domain !== undefined) {
          follow(o.domain); // created if it does not exist yet: a watch waits for its first registration
        } else {
          // New domains appear as files in /dev/shm: inotify tells us, no polling.
          dirWatcher = watchDir('/dev/shm', (_e, f) => {
            const m = /^libipc\.registry\.([A-Za-z0-9._-]{1,63})$/.exec(String(f));
            if (m) {
              try {
                follow(m[1]!);
              } catch {
                // removed again at once
              }
            }
          });
          for (const d of domainsFor(undefined)) follow(d);
        }
        const what = o.domain ?? (registries.size > 0 ? [...registries.keys()].join(', ') + ' and new domains' : 'every new domain');
        if (!o.json) writeLine(io.stdout, c.dim(`watching ${what}; Ctrl-C to stop`));
        await untilAborted(stop.signal);
      } finally {
        stop.abort();
        dirWatcher?.close();
        for (const ac of exits.values()) ac.abort();
        await Promise.allSettled(tasks);
        for (const r of registries.values()) r.close();
      }
    });
};
