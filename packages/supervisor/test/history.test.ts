import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type HistoryEvent, JsonlHistorySink } from '../src/index.js';
import { SqliteHistorySink } from '../src/sqlite.js';
import { manager, nextEvent, onCleanup, svc, tempDir, until } from './support.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('history', () => {
  it('every lifecycle event reaches a JSONL sink and a SQLite sink, with a timestamp', async () => {
    const dir = tempDir();
    const jsonl = new JsonlHistorySink(join(dir, 'sub', 'history.jsonl'));
    const sqlite = new SqliteHistorySink(join(dir, 'history.db'));
    onCleanup(() => sqlite.close());
    const m = manager({ sinks: [jsonl, sqlite] });
    await m.start(svc('h', { restart: { policy: 'on-failure', backoff: { initialMs: 30, factor: 1, maxMs: 30 } }, restartLimit: 1 }));
    const back = nextEvent<HistoryEvent>(m, 'ready');
    process.kill(m.status('h').pid!, 'SIGKILL');
    await back;
    const failed = nextEvent<HistoryEvent>(m, 'failed');
    process.kill(m.status('h').pid!, 'SIGKILL');
    await failed;
    await m.start('h');
    await m.stop('h');
    await m.shutdown();

    const lines = readFileSync(jsonl.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as HistoryEvent);
    expect(lines.map((e) => e.type)).toEqual(['start', 'ready', 'exit', 'restart', 'start', 'ready', 'exit', 'failed', 'start', 'ready', 'exit', 'stop']);
    for (const e of lines) {
      expect(e.timestamp).toMatch(ISO);
      expect(e).toMatchObject({ name: 'h', service: 'h' });
    }
    expect(lines[0]).toMatchObject({ pid: expect.any(Number), startTime: expect.stringMatching(/^\d+$/) });
    expect(lines[2]).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    expect(lines[3]).toMatchObject({ backoffMs: 30 });
    expect(lines[7]!.reason).toMatch(/restart limit 1/);
    expect(lines[10]).toMatchObject({ exitCode: 0, signal: null });
    expect(sqlite.events().map((e) => e.type)).toEqual(lines.map((e) => e.type));
    expect(sqlite.events({ name: 'h', limit: 2 }).map((e) => e.type)).toEqual(['exit', 'stop']);
    // The JSONL sink reads back the same way (a JSON store's history in the cli), and from an offset on.
    expect(jsonl.events().map((e) => e.type)).toEqual(lines.map((e) => e.type));
    expect(jsonl.events({ name: 'h', limit: 2 }).map((e) => e.type)).toEqual(['exit', 'stop']);
    expect(jsonl.events({ name: 'other' })).toEqual([]);
    const all = jsonl.since(0);
    expect(all.events).toEqual(lines);
    expect(jsonl.since(all.next)).toEqual({ events: [], next: all.next });
  });

  it('a sink that throws never stops the manager nor the other sinks', async () => {
    const got: HistoryEvent[] = [];
    const m = manager({
      sinks: [
        () => {
          throw new Error('boom');
        },
        { write: async () => Promise.reject(new Error('async boom')) },
        (e: HistoryEvent) => void got.push(e),
      ],
    });
    const errors: Array<{ sink: number; error: Error }> = [];
    m.on('sink-error', (e: { sink: number; error: Error }) => errors.push(e));
    await m.start(svc('t'));
    await m.stop('t');
    await until(m, () => true, 'nothing');
    await m.shutdown();
    expect(got.map((e) => e.type)).toEqual(['start', 'ready', 'exit', 'stop']);
    expect(errors.filter((e) => e.sink === 0).map((e) => e.error.message)).toEqual(['boom', 'boom', 'boom', 'boom']);
    expect(errors.filter((e) => e.sink === 1)).toHaveLength(4);
  });

  it('a sink that hangs fills its bounded queue: drops are counted and reported, the manager goes on', async () => {
    const m = manager({ sinks: [() => new Promise<void>(() => {})], historyQueueSize: 2, sinkTimeoutMs: 60_000 });
    const dropped = nextEvent<{ sink: number; dropped: number; totalDropped: number }>(m, 'history-dropped');
    for (let i = 0; i < 3; i++) await m.start(svc(`s${i}`, { readiness: 'none', flags: [] }));
    const d = await dropped;
    expect(d.sink).toBe(0);
    expect(d.totalDropped).toBeGreaterThan(0);
    await m.stopAll('*');
    expect(m.count()).toBe(0);
  });
});
