import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { watchExit } from '@libipc/shm';
import { describe, expect, it } from 'vitest';
import { spawnNode } from '../../../test/helpers.js';
import { type HistoryEvent, JsonFileStore, Manager } from '../src/index.js';
import { SCHEMA_VERSION, SqliteHistorySink, SqliteStore } from '../src/sqlite.js';
import { fixture, manager, nextEvent, onCleanup, pidAlive, svc, tempDir, until } from './support.js';

interface Started {
  manager: number;
  statuses: Array<{ name: string; state: string; pid?: number; startTime?: string }>;
}

/** Runs fixtures/manager.mjs under a subreaper (its children outlive it) until it prints READY. */
async function hostManager(args: string[]) {
  const host = spawnNode(fixture('manager.mjs'), args, {}, [], { underReaper: true });
  onCleanup(async () => {
    host.child.kill('SIGTERM');
    await host.exited;
  });
  const line = await host.line('READY', 60_000);
  return { host, started: JSON.parse(line.slice('READY '.length)) as Started };
}

describe('persistence', () => {
  it('a new manager on the SQLite store of a SIGKILLed one re-adopts its children, starts none twice, keeps logs', async () => {
    const dir = tempDir();
    const db = join(dir, 'state.db');
    const logs = join(dir, 'logs');
    const { host, started } = await hostManager([db, 'sqlite', logs]);
    const running = started.statuses.filter((s) => s.state === 'running');
    expect(running.map((s) => s.name)).toEqual(['a', 'b', 'c', 'w.0', 'w.1']);

    // While the old manager lives, nobody else may take its store.
    expect(() => new Manager({ store: db })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    const probe = new SqliteStore(db);
    expect(() => new Manager({ store: probe })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_EXISTS' }));
    probe.close();

    // The new manager is made the moment SIGKILL is sent, before the old one is even gone.
    process.kill(started.manager, 'SIGKILL');
    const store = new SqliteStore(db);
    onCleanup(() => store.close());
    const events: HistoryEvent[] = [];
    const sink = new SqliteHistorySink(store);
    const m = manager({ store, sinks: [sink] });
    m.on('history', (e: HistoryEvent) => events.push(e));
    // Adopted at once, by identity: same pids, same start times.
    const now = m.statusAll();
    expect(now.filter((s) => s.state === 'running').map((s) => [s.name, s.pid, s.startTime?.toString(), s.adopted])).toEqual(
      running.map((s) => [s.name, s.pid, s.startTime, true]),
    );
    expect(m.status('idle').state).toBe('stopped');
    expect(m.status('c').dependsOn).toEqual(['a', 'b']);
    await watchExit(started.manager);
    for (const s of running) expect(pidAlive(s.pid!)).toBe(true);
    await m.loaded;
    expect(events.filter((e) => e.type === 'start')).toEqual([]);
    expect(events.filter((e) => e.type === 'adopt').map((e) => e.name)).toEqual(['a', 'b', 'c', 'w.0', 'w.1']);

    // Its output still reaches the files through the same pipes.
    const b = m.status('b');
    const reader = m.logs('b', { follow: true, lines: 0, stream: 'stdout' });
    const it = reader[Symbol.asyncIterator]();
    const next = it.next();
    process.kill(b.pid!, 'SIGUSR1');
    expect((await next).value).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z usr1 ${b.pid}$`));
    await it.return!();

    // An adopted process that crashes is restarted by its policy, and its dependents after it.
    const ready: string[] = [];
    m.on('ready', (e: HistoryEvent) => ready.push(e.name));
    const cascade = until(m, () => ready.length >= 3, 'a, b and c back');
    process.kill(m.status('a').pid!, 'SIGKILL');
    await cascade;
    expect(ready.slice(0, 3)).toEqual(['a', 'b', 'c']);
    expect(m.status('a').adopted).toBe(false);
    expect(m.status('w.0')).toMatchObject({ adopted: true, pid: running[3]!.pid });

    await m.shutdown(2000);
    await host.exited;
    // Both managers wrote the history table of the same file.
    const types = new Set(sink.events({ limit: 10_000 }).map((e) => e.type));
    for (const t of ['start', 'ready', 'exit', 'restart', 'stop', 'adopt']) expect(types).toContain(t);
  });

  it('finds a child whose pid never reached the store (the manager died right after the spawn)', async () => {
    const dir = tempDir();
    const path = join(dir, 'store.json');
    const host = spawnNode(fixture('manager.mjs'), [path, 'json', join(dir, 'logs'), 'die-at-spawn'], {}, [], { underReaper: true });
    onCleanup(async () => {
      host.child.kill('SIGTERM');
      await host.exited;
    });
    // The manager kills itself; the reaper stays while x runs.
    await watchExit(Number((await host.line('PID')).slice(4)));
    const saved = JSON.parse(readFileSync(path, 'utf8')) as { instances: Array<{ name: string; pid?: number }> };
    expect(saved.instances.find((i) => i.name === 'x')?.pid).toBeUndefined();
    const m = manager({ store: path });
    expect(m.status('x')).toMatchObject({ state: 'running', adopted: true, reason: expect.stringContaining('found by its environment') });
    await m.shutdown(2000);
  }, 60_000);

  it('keeps specs, dependencies and desired states across managers (JSON store)', async () => {
    const dir = tempDir();
    const path = join(dir, 'store.json');
    const m1 = manager({ store: path });
    await m1.start(svc('a'));
    await m1.start(svc('b', { dependsOn: ['a'] }));
    await m1.start(svc('c'));
    await m1.stop('c');
    await m1.shutdown();
    const m2 = manager({ store: new JsonFileStore(path) });
    await m2.loaded;
    expect(m2.statusAll().map((s) => [s.name, s.state, s.desired])).toEqual([
      ['a', 'running', 'running'],
      ['b', 'running', 'running'],
      ['c', 'stopped', 'stopped'],
    ]);
    expect(m2.status('b').dependsOn).toEqual(['a']);
  });

  it('refuses a corrupt store, a foreign file and a cycle in a loaded store', () => {
    const dir = tempDir();
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ not json');
    expect(() => new Manager({ store: bad })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    writeFileSync(bad, JSON.stringify({ hello: 'world' }));
    expect(() => new Manager({ store: bad })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    writeFileSync(bad, JSON.stringify({ format: 'libipc-supervisor-store', version: 1, services: [{ spec: { name: 'a' } }], instances: 'x' }));
    expect(() => new Manager({ store: bad })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));

    const cyclic = join(dir, 'cycle.json');
    const spec = (name: string, dependsOn: string[]) => ({ spec: { name, command: 'sleep', args: ['1000'], dependsOn } });
    writeFileSync(cyclic, JSON.stringify({ format: 'libipc-supervisor-store', version: 1, services: [spec('a', ['b']), spec('b', ['c']), spec('c', ['a'])], instances: [] }));
    expect(() => new Manager({ store: cyclic })).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_CYCLE', message: expect.stringContaining('a → b → c → a') }));

    const ok = new SqliteStore(join(dir, 'ok.db'));
    expect(ok.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(ok.db.pragma('journal_mode', { simple: true })).toBe('wal');
    ok.db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    ok.close();
    expect(() => new SqliteStore(join(dir, 'ok.db'))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE', message: expect.stringContaining('upgrade') }));

    writeFileSync(join(dir, 'garbage.db'), 'x'.repeat(4096));
    expect(() => new SqliteStore(join(dir, 'garbage.db'))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE' }));
    expect(() => new SqliteStore(join(dir, 'no', 'such', 'dir.db'))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_SYSTEM' }));
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (p: string) => { exec(s: string): void; close(): void };
    const foreign = new Database(join(dir, 'other.db'));
    foreign.exec('CREATE TABLE t (x)');
    foreign.close();
    expect(() => new SqliteStore(join(dir, 'other.db'))).toThrow(expect.objectContaining({ code: 'ERR_LIBIPC_INCOMPATIBLE', message: expect.stringContaining('something else') }));
  });

  it('migrates an older SQLite schema', () => {
    const dir = tempDir();
    const path = join(dir, 'old.db');
    const s = new SqliteStore(path);
    // Back to version 1: drop what later versions added.
    s.db.exec(`DROP TABLE history; ALTER TABLE instances DROP COLUMN contract_restarts;`);
    s.db.pragma('user_version = 1');
    s.close();
    const again = new SqliteStore(path);
    expect(again.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    again.putInstance({ name: 'a', service: 'a', desired: 'running', state: 'stopped', restarts: 2, contractRestarts: 1, updatedAt: 1 });
    expect(again.load().instances[0]).toMatchObject({ name: 'a', restarts: 2, contractRestarts: 1 });
    again.close();
  });

  it('a JSON store never writes back a service another process removed (a state change before the next reconcile)', async () => {
    const path = join(tempDir(), 'store.json');
    const m = manager({ store: new JsonFileStore(path) });
    await m.start(svc('a'));
    await m.start(svc('b'));
    const other = new JsonFileStore(path);
    other.deleteService('b');
    other.close();
    // The manager changes state before it reconciles: its rewrite of the file must keep the other process's edit.
    await m.restart('a');
    const file = JSON.parse(readFileSync(path, 'utf8')) as { services: Array<{ spec: { name: string } }>; instances: Array<{ name: string }> };
    expect(file.services.map((x) => x.spec.name)).toEqual(['a']);
    expect(file.instances.map((i) => i.name)).toEqual(['a']);
    // Its own change (a's new pid) is in the file too.
    expect(JSON.stringify(file)).toContain(`"pid":${m.status('a').pid}`);
    // The edit merged in is still news to the manager: its next reconcile removes b.
    const bPid = m.status('b').pid!;
    await m.reconcile();
    await until(m, () => m.statusAll().every((x) => x.name !== 'b' || x.state === 'stopped'), 'b stopped');
    await new Promise((resolve) => setImmediate(resolve)); // the removal follows the stop's answer (microtasks)
    expect(m.statusAll().map((x) => x.name)).toEqual(['a']);
    expect(pidAlive(bPid)).toBe(false);
  });

  it('a JSON store merges entry by entry: ours where only we changed one, the file’s where another process did', () => {
    const path = join(tempDir(), 'store.json');
    const a = new JsonFileStore(path);
    a.putService({ spec: svc('x') });
    a.putService({ spec: svc('y') });
    a.putService({ spec: svc('z') });
    a.flush();
    const b = new JsonFileStore(path);
    b.deleteService('y');
    b.putService({ spec: { ...svc('z'), env: { TEST_BY: 'b' } } });
    b.flush();
    b.close();
    a.putService({ spec: { ...svc('x'), env: { TEST_BY: 'a' } } });
    a.flush();
    a.close();
    const back = new JsonFileStore(path).load();
    expect(Object.fromEntries(back.services.map((s) => [s.spec.name, s.spec.env ?? {}]))).toEqual({ x: { TEST_BY: 'a' }, z: { TEST_BY: 'b' } });
  });

  it('the reconciler applies specs and desired states changed in the store by another process', async () => {
    const dir = tempDir();
    const db = join(dir, 'state.db');
    const store = new SqliteStore(db);
    onCleanup(() => store.close());
    const m = manager({ store, reconcileMs: 50 });
    await m.start(svc('a'));
    const pid = m.status('a').pid;
    const other = new SqliteStore(db);
    onCleanup(() => other.close());
    const snap = other.load();
    const a = snap.services.find((s) => s.spec.name === 'a')!.spec;
    other.putService({ spec: { ...a, env: { TEST_CHANGED: '1' } } });
    other.putService({ spec: svc('n') });
    const changes = nextEvent<{ changes: string[] }>(m, 'reconcile');
    expect((await changes).changes).toEqual(expect.arrayContaining(['n: added', 'a: spec changed']));
    await until(m, () => m.status('a').state === 'running' && m.status('a').pid !== pid, 'a restarted with its new spec');
    await until(m, () => m.status('n').state === 'running', 'n started');
    const rec = other.load().instances.find((i) => i.name === 'n')!;
    other.putInstance({ ...rec, desired: 'stopped' });
    await until(m, () => m.status('n').state === 'stopped', 'n stopped from the store');
  });
});
