import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { SharedMemory, watchExit } from '@libipc/shm';
import { E_START, ENTRY_SIZE, geometry } from '../src/layout.js';
import { uniqueName } from '../../../test/helpers.js';
import { fixture, openRegistry } from './harness.js';

const processState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];

// Forks its arguments as a child and does not reap it until a line arrives on stdin: the child's exit
// leaves a zombie (Node would reap it at once; PID 1 here reaps nothing, so the holder reaps it at the end).
const ZOMBIE_HOLDER = `
$| = 1;
my $pid = fork();
if ($pid == 0) { exec @ARGV or die "exec failed: $!"; }
print "spawned $pid\\n";
<STDIN>;
waitpid($pid, 0);
print "reaped\\n";
`;

describe('liveness is process identity', () => {
  it('treats the entry of a zombie as dead: find/list/findAll remove it and watchers see removed-dead', async () => {
    const domain = uniqueName('zombie');
    const r = openRegistry(domain);
    const changes = r.watch();
    const holder = spawn('perl', ['-e', ZOMBIE_HOLDER, process.execPath, fixture('register.mjs'), domain, 'svc.z', '--exit'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: holder.stdout! })[Symbol.asyncIterator]();
    const next = async () => (await lines.next()).value as string;
    const zombie = Number((await next()).split(' ')[1]);
    expect(await next()).toBe(`registered svc.z ${zombie}`);
    await watchExit(zombie); // it has exited, and nobody reaps it
    try {
      expect(processState(zombie)).toBe('Z');
      expect(r.findAll('svc.')).toEqual([]);
      expect(r.find('svc.z')).toBeUndefined();
      expect(r.list()).toEqual([]);
      expect(processState(zombie)).toBe('Z'); // still a zombie: its pid was not what made it dead
      const seen = [(await changes.next()).value, (await changes.next()).value];
      expect(seen.map((c) => `${c.type} ${c.entry.name} ${c.entry.pid}`)).toEqual([
        `registered svc.z ${zombie}`,
        `removed-dead svc.z ${zombie}`,
      ]);
    } finally {
      holder.stdin!.end('reap\n');
      await once(holder, 'exit');
    }
  });

  it('treats an entry whose pid now belongs to another process (other start time) as dead', () => {
    const domain = uniqueName('reused');
    const r = openRegistry(domain, { capacity: 4 });
    // Registered for a pid (no lease): its liveness is the process identity alone.
    expect(r.register('svc', 'ctl', 'rep', { pid: process.pid })).toBe(true);
    const entry = r.find('svc')!;
    expect(entry.leased).toBe(false);
    // Make the entry say it was registered by an earlier process with this pid.
    const mem = SharedMemory.open(domain, { kind: 'registry' });
    try {
      new DataView(mem.buffer).setBigUint64(geometry(4).entries + 0 * ENTRY_SIZE + E_START, entry.startTime - 1n, true);
    } finally {
      mem.close();
    }
    expect(r.list()).toEqual([]);
    expect(r.find('svc')).toBeUndefined();
    // Its name is free again for the process that now lives.
    expect(r.register('svc', 'ctl', 'rep')).toBe(true);
    expect(r.gc()).toBe(0);
  });

  it('gc() removes the entries of dead processes (reused pids included)', async () => {
    const domain = uniqueName('gcdead');
    const r = openRegistry(domain, { capacity: 4 });
    r.register('mine', 'ctl', 'rep', { pid: process.pid });
    const start = r.find('mine')!.startTime;
    const mem = SharedMemory.open(domain, { kind: 'registry' });
    new DataView(mem.buffer).setBigUint64(geometry(4).entries + E_START, start + 7n, true);
    mem.close();
    expect(r.gc()).toBe(1);
    expect(r.list()).toEqual([]);
  });
});
