// The demo itself: the real, built audio-host starting real audio-service processes.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '@libipc/shm';
import { liveChildren, type NodeChild, shmObjects, spawnNode, uniqueName } from '../../../test/helpers.js';
import { buildCppEngine } from '../src/cpp-engine.js';

const host = fileURLToPath(new URL('../dist/audio-host.js', import.meta.url));
const children: NodeChild[] = [];
const pids = new Set<number>();

beforeAll(() => {
  if (!existsSync(host)) throw new Error(`${host} is missing: pnpm turbo run build --filter @libipc/audio-demo...`);
});

afterEach(async () => {
  for (const c of children.splice(0)) await c.kill('SIGKILL');
  // Whatever a failed run left is stopped here, so one failure does not leak into the next test.
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  pids.clear();
  expect(liveChildren()).toEqual([]);
});

function startHost(args: string[]) {
  const domain = uniqueName('demo');
  const child = spawnNode(host, ['--domain', domain, ...args]);
  children.push(child);
  return { domain, child };
}

/** Pids from the instance table lines the host prints (`  audio_compute.0  primary  1234  1`). */
function tablePids(lines: string[]): number[] {
  return lines.flatMap((l) => /^\s+audio_compute\.\d+\s+\w+\s+(\d+)/.exec(l)?.[1] ?? []).map(Number);
}

describe('audio demo', () => {
  it('runs the whole story: failover, gain 0.75 read back, a reload with one handover, no buffer lost, nothing left', async () => {
    const { domain, child } = startHost(['--json', '--buffers', '200']);
    const lines: string[] = [];
    child.child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const exit = await child.exited;
    const summary = JSON.parse(lines.at(-1) ?? '{}');
    for (const row of [...(summary.instancesBefore ?? []), ...(summary.instancesAfter ?? [])]) pids.add(row.pid);
    expect(summary).toMatchObject({ ok: true, gainReadBack: 0.75, lostBuffers: 0, buffersPlanned: 600, buffersVerified: 600 });
    // The reload: both instances replaced, one handover from the primary after the crash (1) to the other.
    expect(summary.reload).toMatchObject({ previous: 'audio_compute.1', primary: 'audio_compute.0', epochChanges: 1, replaced: 2 });
    expect(exit).toEqual({ code: 0, signal: null });
    expect(summary.failoverMs).toBeGreaterThan(0);
    expect(summary.failoverMs).toBeLessThan(10_000);
    expect(summary.buffersPerSec).toBeGreaterThan(0);
    expect(summary.latencyMs.p50).toBeGreaterThan(0);
    expect(summary.latencyMs.p99).toBeGreaterThanOrEqual(summary.latencyMs.p50);
    expect(summary.maxSampleError).toBeLessThanOrEqual(1e-6);
    // Two instances before; after the crash the killed one came back with a new pid, and the other is primary.
    expect(summary.instancesBefore.map((r: { role: string }) => r.role)).toEqual(['primary', 'standby']);
    expect(summary.instancesAfter.map((r: { role: string }) => r.role)).toEqual(['standby', 'primary']);
    expect(summary.instancesAfter[0].pid).not.toBe(summary.instancesBefore[0].pid);
    expect(pids.size).toBe(3);
    for (const pid of pids) expect(isAlive(pid), `instance ${pid} still running`).toBe(false);
    expect(shmObjects(domain)).toEqual([]);
  });

  it('prints the seed story lines without --json', async () => {
    const { domain, child } = startHost(['--buffers', '40']);
    const exit = await child.exited;
    const out: string[] = [];
    await Promise.all(
      [
        'host: starting service group (2 replicas)...',
        'ack ref_seq=1 status=Ok',
        'param 0 = 0.75',
        '*** SIMULATING PRIMARY CRASH ***',
        'host: failover took',
        '*** RELOADING THE GROUP (a new version, standby first) ***',
        'host: reload done in',
        'host: done: every step passed',
      ].map(async (prefix) => out.push(await child.line(prefix, 1000))),
    );
    const table = await child.line((l) => /^\s+audio_compute\.1\s+primary/.test(l), 1000);
    expect(table).toMatch(/audio_compute\.1\s+primary\s+\d+\s+2/);
    expect(exit.code).toBe(0);
    expect(shmObjects(domain)).toEqual([]);
  });

  it('a failed step is named, cleaned up after, and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audio-demo-'));
    const crashing = join(dir, 'crashing-service.mjs');
    writeFileSync(crashing, 'process.exit(3);\n');
    try {
      const { domain, child } = startHost([crashing, '--json']);
      const lines: string[] = [];
      child.child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
      expect((await child.exited).code).toBe(1);
      const summary = JSON.parse(lines.at(-1) ?? '{}');
      expect(summary).toMatchObject({ ok: false, failedStep: 'start the service group' });
      expect(summary.error).toMatch(/exited with exit code 3 before it registered/);
      expect(shmObjects(domain)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Ctrl-C mid-stream stops the group and leaves no process and no object', async () => {
    // Enough buffers to be streaming for a long while when SIGINT arrives.
    const { domain, child } = startHost(['--buffers', '100000']);
    const lines: string[] = [];
    child.child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n')));
    await child.line('host: streaming');
    for (const pid of tablePids(lines)) pids.add(pid);
    expect(pids.size).toBe(2);
    child.child.kill('SIGINT');
    expect(await child.exited).toEqual({ code: 130, signal: null });
    expect(lines.join('\n')).toContain('host: interrupted; group stopped, nothing left behind');
    for (const pid of pids) expect(isAlive(pid), `instance ${pid} still running`).toBe(false);
    expect(shmObjects(domain)).toEqual([]);
  });
});

describe('audio demo with the C++ engine', () => {
  beforeAll(() => {
    // Compiled once (g++ -O2, tens of seconds on a loaded machine), outside the runs' own time.
    buildCppEngine(() => undefined);
  }, 300_000);

  it.each([
    { engine: 'cpp' },
    { engine: 'mixed' },
  ])('--engine $engine: the same story — failover, gain 0.75 read back, a reload, every sample verified', async ({ engine }) => {
    const { domain, child } = startHost(['--json', '--buffers', '200', '--engine', engine]);
    const lines: string[] = [];
    child.child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const exit = await child.exited;
    const summary = JSON.parse(lines.at(-1) ?? '{}');
    for (const row of [...(summary.instancesBefore ?? []), ...(summary.instancesAfter ?? [])]) pids.add(row.pid);
    expect(summary).toMatchObject({ ok: true, engine, gainReadBack: 0.75, lostBuffers: 0, buffersPlanned: 600, buffersVerified: 600 });
    expect(summary.maxSampleError).toBeLessThanOrEqual(1e-6);
    expect(summary.reload).toMatchObject({ previous: 'audio_compute.1', primary: 'audio_compute.0', epochChanges: 1, replaced: 2 });
    expect(exit).toEqual({ code: 0, signal: null });
    // What each instance ran (from /proc/<pid>/exe); in a mixed group the C++ primary failed over to the Node standby.
    const engines = engine === 'cpp' ? ['c++', 'c++'] : ['c++', 'node'];
    expect(summary.instancesBefore.map((r: { role: string; engine: string }) => [r.role, r.engine])).toEqual([['primary', engines[0]], ['standby', engines[1]]]);
    expect(summary.instancesAfter.map((r: { role: string; engine: string }) => [r.role, r.engine])).toEqual([['standby', engines[0]], ['primary', engines[1]]]);
    for (const pid of pids) expect(isAlive(pid), `instance ${pid} still running`).toBe(false);
    expect(shmObjects(domain)).toEqual([]);
  }, 120_000);
});
