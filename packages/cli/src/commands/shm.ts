import { type RegisterCommand, example } from '../command.js';
import { writeLine } from '../io.js';
import { formatBytes, renderTable, toJson, truncate } from '../output.js';
import { cleanObjects, why } from '../shm/clean.js';
import { namePattern } from '@libipc/supervisor';
import { type ObjectUser, type ShmObject, collectObjects } from '../shm/objects.js';

/** The objects a [pattern] argument selects: by name (a channel's doorbells go with it) or by object name. */
function selected(pattern: string | undefined): ShmObject[] {
  const objects = collectObjects();
  if (pattern === undefined) return objects;
  const match = namePattern(pattern);
  return objects.filter((x) => match(x.name) || match(x.object) || (x.channel !== undefined && match(x.channel)));
}

/** `libipc shm ls` and `libipc shm clean`: libipc's objects in /dev/shm, and removal of what crashed runs left. */
export const registerShm: RegisterCommand = (program, ctx) => {
  const shm = program
    .command('shm')
    .description("libipc's shared-memory objects in /dev/shm: list them, remove those whose every user is dead")
    .addHelpText('after', example('libipc shm ls', 'libipc shm clean --dry-run'));

  shm
    .command('ls')
    .description('list libipc.<kind>.<name> objects: kind, size, creator and attached processes with liveness, state')
    .argument('[pattern]', "only objects whose name matches this glob (e.g. 'audio_*'; default: all)")
    .option('--json', 'print a JSON array, one object per /dev/shm object')
    .addHelpText('after', example('libipc shm ls', "libipc shm ls 'audio_*'", 'libipc shm ls --json'))
    .action((pattern: string | undefined, o: { json?: boolean }) => {
      const objects = selected(pattern);
      const { io, colors: c } = ctx;
      if (o.json) {
        writeLine(io.stdout, toJson(objects.map(record)));
        return;
      }
      if (objects.length === 0) {
        writeLine(io.stdout, 'no libipc objects in /dev/shm');
        return;
      }
      const width = Math.max(30, (io.stdout.columns ?? 160) - 90);
      const rows = objects.map((x) => [
        x.object,
        x.kind,
        x.type === 'segment' ? formatBytes(x.size) : x.type,
        x.creator ? `${x.creator.pid} ${x.creator.alive ? c.green('alive') : c.red('dead')}` : '-',
        truncate(describeUsers(x.users), width).replace(/\b(alive|dead)\b/g, (w) => (w === 'alive' ? c.green(w) : c.red(w))),
        verdict(x, c),
      ]);
      writeLine(io.stdout, renderTable(['OBJECT', 'KIND', 'SIZE', 'CREATOR', 'USERS', 'STATE'], rows, c));
      const stale = objects.filter((x) => x.removable).length;
      if (stale > 0) writeLine(io.stdout, c.dim(`${stale} left by dead processes: 'libipc shm clean' removes them`));
    });

  shm
    .command('clean')
    .description('remove the objects whose every user is dead (never one a live process uses)')
    .argument('[pattern]', "only objects whose name matches this glob (e.g. 'audio_*'; default: all)")
    .option('-n, --dry-run', 'only say what would be removed')
    .addHelpText('after', example('libipc shm clean --dry-run', 'libipc shm clean', "libipc shm clean 'audio_*'"))
    .action((pattern: string | undefined, o: { dryRun?: boolean }) => {
      const { io } = ctx;
      const objects = selected(pattern);
      const steps = cleanObjects(objects, { dryRun: o.dryRun === true });
      for (const st of steps) writeLine(io.stdout, st.action === 'kept' ? `kept ${st.object.object}: ${st.why}` : `${st.action} ${st.object.object} (${why(st.object)})`);
      const candidates = steps.filter((st) => st.action === 'would remove');
      const removed = steps.filter((st) => st.action === 'removed').length;
      const kept = objects.length - (o.dryRun ? candidates.length : removed);
      writeLine(
        io.stdout,
        o.dryRun
          ? `would remove ${candidates.length} object(s), keep ${kept}`
          : `removed ${removed} object(s), kept ${kept}${kept > 0 ? " ('libipc shm ls' shows them)" : ''}`,
      );
    });
};

function describeUsers(users: ObjectUser[]): string {
  if (users.length === 0) return 'none';
  const shown = users.slice(0, 4).map((u) => `${u.pid} ${u.role} ${u.alive ? 'alive' : 'dead'}`);
  return `${shown.join(', ')}${users.length > 4 ? `, +${users.length - 4} more` : ''}`;
}

function verdict(x: ShmObject, c: { green(s: string): string; yellow(s: string): string; dim(s: string): string }): string {
  if (x.inUse) return `${x.state}, ${c.green('in use')}`;
  if (x.removable) return `${x.state}, ${c.yellow('abandoned')}`;
  return `${x.state}, ${c.dim(x.note ? truncate(x.note, 50) : 'kept')}`;
}

function record(x: ShmObject): Record<string, unknown> {
  return {
    object: x.object,
    kind: x.kind,
    name: x.name,
    type: x.type,
    size: x.size,
    uid: x.uid,
    creator: x.creator ?? null,
    state: x.state,
    users: x.users,
    inUse: x.inUse,
    removable: x.removable,
    note: x.note ?? null,
  };
}
