import { type InspectedEntry, inspectRegistry } from '@libipc/registry';
import { LibipcError, NotFoundError } from '@libipc/shm';
import { type RegisterCommand, example, nameArgument } from '../command.js';
import { domainsFor } from '../domains.js';
import { writeLine } from '../io.js';
import { formatDuration, renderTable, toJson } from '../output.js';
import { startedAtMs } from '../proc.js';

interface LsOptions {
  domain?: string;
  json?: boolean;
}

/** `libipc ls`: registry entries and group records, read without joining the registry. */
export const registerLs: RegisterCommand = (program, ctx) => {
  program
    .command('ls')
    .description('list registry entries (name, pid, alive, uptime, heartbeat, channels) and group records (primary, epoch)')
    .option('-d, --domain <domain>', 'only this registry domain (default: every domain found)', nameArgument('domain'))
    .option('--json', 'print a JSON array, one object per entry or group record')
    .addHelpText('after', example('libipc ls', 'libipc ls --domain audio --json'))
    .action((o: LsOptions) => {
      const now = Date.now();
      const entries: Array<Record<string, unknown>> = [];
      const groups: Array<Record<string, unknown>> = [];
      const problems: string[] = [];
      for (const domain of domainsFor(o.domain)) {
        let snap;
        try {
          snap = inspectRegistry(domain);
        } catch (err) {
          if (err instanceof NotFoundError && o.domain === undefined) continue; // removed since we listed it
          if (!(err instanceof LibipcError) || o.domain !== undefined) throw err;
          problems.push(`domain ${domain}: ${err.message}`);
          continue;
        }
        const byName = new Map(snap.entries.map((e) => [e.name, e]));
        for (const e of snap.entries) entries.push(entryRecord(domain, e, now));
        for (const g of snap.groups) {
          const primary = g.primary === undefined ? undefined : byName.get(g.primary);
          groups.push({ type: 'group', domain, name: g.name, epoch: g.epoch, primary: g.primary ?? null, primaryAlive: primary?.alive ?? false });
        }
      }
      const { io, colors: c } = ctx;
      if (o.json) {
        writeLine(io.stdout, toJson([...entries, ...groups]));
        return;
      }
      for (const p of problems) io.stderr.write(`libipc ls: ${p}\n`);
      if (entries.length === 0 && groups.length === 0) {
        writeLine(io.stdout, o.domain ? `no entries in domain ${o.domain}` : 'no registry entries (no domain in /dev/shm has any)');
        return;
      }
      if (entries.length > 0) {
        const rows = entries.map((e) => {
          const alive = e.alive as boolean;
          const mark = (s: string) => (alive ? s : c.dim(s));
          return [
            mark(String(e.domain)),
            mark(String(e.name)),
            mark(String(e.pid)),
            alive ? c.green('alive') : c.red('dead'),
            mark(alive ? formatDuration(e.uptimeMs as number) : '-'),
            mark(e.heartbeatAgeMs === null ? '-' : `${formatDuration(e.heartbeatAgeMs as number)} ago`),
            mark(String(e.controlChannel)),
            mark(String(e.replyChannel)),
          ];
        });
        writeLine(io.stdout, renderTable(['DOMAIN', 'NAME', 'PID', 'ALIVE', 'UPTIME', 'HEARTBEAT', 'CONTROL', 'REPLY'], rows, c));
      }
      if (groups.length > 0) {
        if (entries.length > 0) writeLine(io.stdout);
        const rows = groups.map((g) => [
          String(g.domain),
          String(g.name),
          String(g.epoch),
          g.primary === null ? '-' : `${String(g.primary)}${g.primaryAlive ? '' : c.red(' (dead)')}`,
        ]);
        writeLine(io.stdout, renderTable(['DOMAIN', 'GROUP', 'EPOCH', 'PRIMARY'], rows, c));
      }
      const dead = entries.filter((e) => !e.alive).length;
      if (dead > 0) writeLine(io.stdout, c.dim(`${dead} dead ${dead === 1 ? 'entry' : 'entries'}: 'libipc gc' removes them`));
    });
};

function entryRecord(domain: string, e: InspectedEntry, now: number): Record<string, unknown> {
  return {
    type: 'entry',
    domain,
    name: e.name,
    pid: e.pid,
    startTime: e.startTime,
    alive: e.alive,
    uptimeMs: e.alive ? Math.max(0, now - startedAtMs(e.startTime)) : null,
    registeredAt: e.registeredAt.toISOString(),
    heartbeatAt: e.heartbeatAt?.toISOString() ?? null,
    heartbeatAgeMs: e.heartbeatAt ? Math.max(0, now - e.heartbeatAt.getTime()) : null,
    controlChannel: e.controlChannel,
    replyChannel: e.replyChannel,
    meta: e.meta ?? null,
  };
}
