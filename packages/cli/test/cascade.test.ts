// What a dashboard action does to other services (pure, as a table).
import { describe, expect, it } from 'vitest';
import { cascadeOf, compactNames } from '../src/dashboard/cascade.js';
import { shownState } from '../src/store-view.js';

const specs = [{ name: 'db' }, { name: 'api', dependsOn: ['db'] }, { name: 'worker', dependsOn: ['api'] }, { name: 'cron' }];
const unit = (name: string, service: string, state: string, desired = state === 'stopped' ? 'stopped' : 'running') => ({ name, service, state, desired });
const up = [unit('db', 'db', 'running'), unit('api', 'api', 'running'), unit('worker.0', 'worker', 'running'), unit('worker.1', 'worker', 'running'), unit('worker.2', 'worker', 'running'), unit('cron', 'cron', 'running')];
const afterStopDb = up.map((u) => (u.service === 'cron' ? u : { ...u, state: 'stopped', desired: 'stopped' }));

describe('cascadeOf', () => {
  it.each([
    { what: 'stop db stops api and the workers', action: 'stop', target: 'db', units: up, also: ['api', 'worker.0', 'worker.1', 'worker.2'], dependents: [] },
    { what: 'stop one worker stops nothing else', action: 'stop', target: 'worker.1', units: up, also: [], dependents: [] },
    { what: 'restart api restarts the workers', action: 'restart', target: 'api', units: up, also: ['worker.0', 'worker.1', 'worker.2'], dependents: [] },
    { what: 'start db after stop db offers the dependents it took down', action: 'start', target: 'db', units: afterStopDb, also: [], dependents: ['api', 'worker.0', 'worker.1', 'worker.2'] },
    { what: 'start worker.0 starts api and db first', action: 'start', target: 'worker.0', units: afterStopDb, also: ['db', 'api'], dependents: [] },
    { what: 'start cron: nothing else', action: 'start', target: 'cron', units: up, also: [], dependents: [] },
  ] as const)('$what', ({ action, target, units, also, dependents }) => {
    const c = cascadeOf(action, target, specs, units);
    expect([...c.also].sort()).toEqual([...also].sort());
    expect(c.dependents).toEqual(dependents);
  });

  it('shortens runs of instances', () => {
    expect(compactNames(['worker.2', 'api', 'worker.0', 'worker.1', 'w.5', 'w.7', 'x.10', 'x.9'])).toBe('api, w.5, w.7, worker.0-2, x.9-10');
  });
});

describe('shownState', () => {
  const live = { pid: 1, alive: true };
  const dead = { pid: 1, alive: false };
  it.each([
    { what: 'a live run: the stored state', row: { state: 'running', alive: true, pid: 5 }, manager: live, shown: 'running', orphaned: false },
    { what: 'a dead run, process alive: orphaned', row: { state: 'running', alive: true, pid: 5 }, manager: dead, shown: 'orphaned', orphaned: true },
    { what: 'no run at all, process alive: orphaned', row: { state: 'running', alive: true, pid: 5 }, manager: null, shown: 'orphaned', orphaned: true },
    { what: 'a dead run, process gone: gone', row: { state: 'running', alive: false, pid: 5 }, manager: dead, shown: 'gone', orphaned: false },
    { what: 'a dead run, stopped: stopped', row: { state: 'stopped', alive: false, pid: null }, manager: dead, shown: 'stopped', orphaned: false },
  ])('$what', ({ row, manager, shown, orphaned }) => {
    const s = shownState(row, manager, '/s.db');
    expect(s).toMatchObject({ shownState: shown, orphaned });
    expect(s.note === null).toBe(shown === row.state);
  });
});
