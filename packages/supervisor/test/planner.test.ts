// The manager's decisions as tables: a world of units (desired and observed state, dependencies) in, the next
// action of each unit out. Pure: no process, no timer.
import { DEFAULT_RESTART_POLICY, type ExitStatus, type RestartPolicy } from '@libipc/process';
import { describe, expect, it } from 'vitest';
import { DependencyGraph } from '../src/dependency-graph.js';
import { type Action, CancelledError, type UnitView, type World, afterAdoptedExit, limitReached, plan, verdict } from '../src/planner.js';

type U = Partial<UnitView> & { name: string };

/** A world of units (service = the name before a '.') with `deps` (service → what it depends on). */
function world(units: U[], deps: Record<string, string[]> = {}, shuttingDown = false): { w: World; all: UnitView[] } {
  const all: UnitView[] = units.map((u) => ({
    service: u.name.split('.')[0]!,
    state: 'stopped',
    desired: 'stopped',
    starting: false,
    stopping: false,
    bounce: false,
    restartCause: undefined,
    reason: undefined,
    generation: 0,
    ...u,
  }));
  const g = new DependencyGraph();
  for (const u of all) g.addNode(u.service);
  for (const [s, ds] of Object.entries(deps)) for (const d of ds) g.addEdge(s, d);
  const w: World = {
    unitsOf: (s) => all.filter((u) => u.service === s),
    dependenciesOf: (s) => g.dependenciesView(s),
    dependentsOf: (s) => g.dependentsView(s),
    dependencyClosure: (s) => g.dependencyClosure(s),
    isShuttingDown: () => shuttingDown,
  };
  return { w, all };
}

const planOf = (units: U[], deps?: Record<string, string[]>, shuttingDown?: boolean) => {
  const { w, all } = world(units, deps, shuttingDown);
  return Object.fromEntries(plan(w, all));
};

const up = (name: string, extra: Partial<UnitView> = {}): U => ({ name, state: 'running', desired: 'running', ...extra });
const want = (name: string, extra: Partial<UnitView> = {}): U => ({ name, state: 'stopped', desired: 'running', ...extra });
const down = (name: string, extra: Partial<UnitView> = {}): U => ({ name, state: 'running', desired: 'stopped', ...extra });
const start: Action = { kind: 'start' };

describe('planner: dependency blocking', () => {
  const cases: Array<[string, U[], Record<string, string[]>, Record<string, Action>]> = [
    ['a service without dependencies starts', [want('a')], {}, { a: start }],
    ['a dependency not yet running holds its dependent back', [want('a'), want('b')], { b: ['a'] }, { a: start, b: { kind: 'wait', reason: 'waiting for a (stopped)' } }],
    ['already waiting with that reason: nothing to do', [want('a'), want('b', { reason: 'waiting for a (stopped)' })], { b: ['a'] }, { a: start }],
    ['a starting dependency', [up('a', { state: 'starting' }), want('b')], { b: ['a'] }, { b: { kind: 'wait', reason: 'waiting for a (starting)' } }],
    ['a ready dependency lets it start', [up('a'), want('b')], { b: ['a'] }, { b: start }],
    ['a failed dependency says why', [up('a', { state: 'failed', reason: 'boom' }), want('b')], { b: ['a'] }, { b: { kind: 'wait', reason: 'waiting for a, which failed: boom' } }],
    [
      'a running dependency held back by its own',
      [want('z'), up('a'), want('b')],
      { a: ['z'], b: ['a'] },
      { z: start, a: { kind: 'stop', reason: 'waiting for z (stopped)', cause: 'crash', note: 'z went down' }, b: { kind: 'wait', reason: 'waiting for a (its dependencies are not running)' } },
    ],
    [
      'a dependency being restarted (nothing runs on it, so it stops at once)',
      [up('a', { bounce: true }), want('b')],
      { b: ['a'] },
      { a: { kind: 'stop', reason: 'restart()', cause: 'manual', note: 'restart()' }, b: { kind: 'wait', reason: 'waiting for a (restarting)' } },
    ],
    ['a dependency asked to stop', [down('a', { state: 'stopped' }), want('b')], { b: ['a'] }, { b: { kind: 'wait', reason: 'waiting for a (stopped)' } }],
    ['instances: every instance must run', [up('w.0'), want('w.1', { starting: true }), want('b')], { b: ['w'] }, { b: { kind: 'wait', reason: 'waiting for w (running, stopped)' } }],
    // Today's wording: a unit whose stop is in flight still shows as running in the reason.
    ['a stopping instance is not healthy', [up('w.0', { stopping: true }), want('b')], { b: ['w'] }, { b: { kind: 'wait', reason: 'waiting for w (its dependencies are not running)' } }],
    ['the first unhealthy dependency by name is named', [want('y'), want('x'), want('b')], { b: ['y', 'x'] }, { y: start, x: start, b: { kind: 'wait', reason: 'waiting for x (stopped)' } }],
  ];
  it.each(cases)('%s', (_, units, deps, expected) => {
    expect(planOf(units, deps)).toEqual(expected);
  });
});

describe('planner: cascade restart', () => {
  const cases: Array<[string, U[], Record<string, string[]>, Record<string, Action>]> = [
    [
      'a crashed dependency stops its running dependents, deepest first (c before b)',
      [up('a', { state: 'backoff', restartCause: 'crash' }), up('b'), up('c')],
      { b: ['a'], c: ['a', 'b'] },
      { c: { kind: 'stop', reason: 'waiting for a (backoff)', cause: 'crash', note: 'a went down' } },
    ],
    [
      'once c is down, b follows',
      [up('a', { state: 'backoff', restartCause: 'crash' }), up('b'), up('c', { state: 'stopped', restartCause: 'crash' })],
      { b: ['a'], c: ['a', 'b'] },
      { b: { kind: 'stop', reason: 'waiting for a (backoff)', cause: 'crash', note: 'a went down' }, c: { kind: 'wait', reason: 'waiting for a (backoff)' } },
    ],
    [
      'a dependent starting counts as running: it is stopped too',
      [up('a', { state: 'stopped', restartCause: 'crash' }), up('b', { state: 'starting' })],
      { b: ['a'] },
      { a: start, b: { kind: 'stop', reason: 'waiting for a (stopped)', cause: 'crash', note: 'a went down' } },
    ],
    [
      'a dependent of a restarted service comes back as a manual restart, not a crash',
      [up('a', { state: 'stopped', restartCause: 'manual' }), up('b')],
      { b: ['a'] },
      { a: start, b: { kind: 'stop', reason: 'waiting for a (stopped)', cause: 'manual', note: 'a went down' } },
    ],
    [
      'restart() of a with a dependent: b stops first (manual), a waits for it',
      [up('a', { bounce: true }), up('b')],
      { b: ['a'] },
      { b: { kind: 'stop', reason: 'waiting for a (restarting)', cause: 'manual', note: 'a went down' } },
    ],
    ['restart() of a service nothing runs on', [up('a', { bounce: true })], {}, { a: { kind: 'stop', reason: 'restart()', cause: 'manual', note: 'restart()' } }],
    [
      "a trigger's restart stops with the trigger's reason (manual: not counted against the contract)",
      [up('a', { bounce: true, restartTrigger: { trigger: 'memory', reason: 'memory: RSS 300 MiB above maxMemory 256 MiB for 3 s' } })],
      {},
      { a: { kind: 'stop', reason: 'memory: RSS 300 MiB above maxMemory 256 MiB for 3 s', cause: 'manual', note: 'memory: RSS 300 MiB above maxMemory 256 MiB for 3 s' } },
    ],
    ['a unit in backoff whose dependency went down drops its pending restart', [want('a'), up('b', { state: 'backoff' })], { b: ['a'] }, { a: start, b: { kind: 'cancel-backoff', reason: 'waiting for a (stopped)' } }],
    ['a unit in backoff with healthy dependencies: its policy restarts it', [up('a'), up('b', { state: 'backoff' })], { b: ['a'] }, {}],
    ['a stop already in flight is not repeated', [up('a', { state: 'backoff' }), up('b', { stopping: true })], { b: ['a'] }, {}],
  ];
  it.each(cases)('%s', (_, units, deps, expected) => {
    expect(planOf(units, deps)).toEqual(expected);
  });
});

describe('planner: stop ordering', () => {
  const abc = { b: ['a'], c: ['a', 'b'] };
  const cases: Array<[string, U[], Record<string, string[]>, boolean, Record<string, Action>]> = [
    ['stop(a) with b, c depending on it: c first', [down('a'), down('b'), down('c')], abc, false, { c: { kind: 'stop', reason: 'stop()' } }],
    ['then b', [down('a'), down('b'), down('c', { state: 'stopped' })], abc, false, { b: { kind: 'stop', reason: 'stop()' } }],
    ['then a', [down('a'), down('b', { state: 'stopped' }), down('c', { state: 'stopped' })], abc, false, { a: { kind: 'stop', reason: 'stop()' } }],
    ['while a dependent is stopping, its dependency waits', [down('a'), down('b', { state: 'stopping', stopping: true })], { b: ['a'] }, false, {}],
    ['a dependent whose start is in flight counts as live', [down('a'), down('b', { state: 'stopped', starting: true })], { b: ['a'] }, false, {}],
    ['shutdown() says so', [down('a')], {}, true, { a: { kind: 'stop', reason: 'shutdown()' } }],
    ['a failed unit asked to stop becomes stopped', [down('a', { state: 'failed' }), down('b', { state: 'exited' })], {}, false, { a: { kind: 'clear', reason: 'stop()' }, b: { kind: 'clear', reason: 'stop()' } }],
    ['… unless a start of it is still in flight', [down('a', { state: 'failed', starting: true })], {}, false, {}],
    ['a unit in backoff asked to stop drops its restart', [down('a', { state: 'backoff' })], {}, false, { a: { kind: 'cancel-backoff', reason: 'stop()' } }],
    ['stopped and stopping units need nothing', [down('a', { state: 'stopped' }), down('b', { state: 'stopping', stopping: true })], {}, false, {}],
  ];
  it.each(cases)('%s', (_, units, deps, shuttingDown, expected) => {
    expect(planOf(units, deps, shuttingDown)).toEqual(expected);
  });
});

describe('planner: concurrent requests', () => {
  const cases: Array<[string, U[], Record<string, Action>]> = [
    ['a start in flight is not started again', [want('a', { starting: true })], {}],
    ['start() after stop(): waits for the stop to finish', [want('a', { state: 'stopping', stopping: true })], {}],
    ['… and starts once stopped', [want('a')], { a: start }],
    ['stop() overtakes a start in flight', [down('a', { state: 'starting', starting: true })], { a: { kind: 'stop', reason: 'stop()' } }],
    ['a stop() then a start(): the running process is kept', [up('a')], {}],
  ];
  it.each(cases)('%s', (_, units, expected) => {
    expect(planOf(units)).toEqual(expected);
  });

  const verdicts: Array<[string, U[], Record<string, string[]>, 'running' | 'stopped', number | undefined, true | RegExp | undefined]> = [
    ['start() resolves when running', [up('a')], {}, 'running', undefined, true],
    ['start() overtaken by stop()', [down('a')], {}, 'running', undefined, /start of a was overtaken by a later stop\(\)/],
    ['stop() overtaken by start()', [want('a')], {}, 'stopped', undefined, /stop of a was overtaken by a later start\(\)/],
    ['stop() resolves when stopped', [down('a', { state: 'stopped' })], {}, 'stopped', undefined, true],
    ['stop() waits for a stop in flight', [down('a', { state: 'stopped', stopping: true })], {}, 'stopped', undefined, undefined],
    ['restart() waits for a newer process', [up('a', { generation: 3 })], {}, 'running', 3, undefined],
    ['restart() resolves with the newer process', [up('a', { generation: 4 })], {}, 'running', 3, true],
    ['restart() waits while bouncing', [up('a', { bounce: true, generation: 4 })], {}, 'running', 3, undefined],
    ['start() of a failed unit rejects', [want('a', { state: 'failed', reason: 'boom' })], {}, 'running', undefined, /a failed: boom/],
    ['… but a start in flight reports its own error first', [want('a', { state: 'failed', starting: true })], {}, 'running', undefined, undefined],
    ['start() of a unit whose dependency failed rejects', [want('a', { state: 'failed', reason: 'boom' }), want('b')], { b: ['a'] }, 'running', undefined, /b cannot start: it depends on a, which failed \(boom\)/],
    ['… transitively', [want('a', { state: 'exited' }), want('b'), want('c')], { b: ['a'], c: ['b'] }, 'running', undefined, /c cannot start: it depends on a, which exited/],
  ];
  it.each(verdicts)('verdict: %s', (_, units, deps, kind, afterGeneration, expected) => {
    const { w, all } = world(units, deps);
    const v = verdict(w, all[all.length - 1]!, { kind, afterGeneration });
    if (expected === true || expected === undefined) expect(v).toBe(expected);
    else expect((v as Error).message).toMatch(expected);
  });

  it('an overtaken request is a CancelledError (ERR_LIBIPC_ILLEGAL_STATE)', () => {
    const { w, all } = world([down('a')]);
    expect(verdict(w, all[0]!, { kind: 'running' })).toBeInstanceOf(CancelledError);
    expect(verdict(w, all[0]!, { kind: 'running' })).toMatchObject({ code: 'ERR_LIBIPC_ILLEGAL_STATE' });
  });
});

describe('planner: restart limits and backoff', () => {
  it.each([
    [undefined, 5, false],
    [3, 2, false],
    [3, 3, true],
    [0, 0, true],
  ])('restartLimit %s after %i crash restarts: used up = %s', (limit, n, expected) => {
    expect(limitReached(limit, n)).toBe(expected);
  });

  const killed: ExitStatus = { reason: 'signaled', exited: false, exitCode: null, signaled: true, signal: 'SIGKILL' };
  const code = (n: number): ExitStatus => ({ reason: 'exited', exited: true, exitCode: n, signaled: false, signal: null });
  const always: RestartPolicy = { policy: 'always', backoff: { initialMs: 50, factor: 2, maxMs: 1000 } };
  const defaultDelay = DEFAULT_RESTART_POLICY.backoff!.initialMs;
  const cases: Array<[string, RestartPolicy, ExitStatus, number | undefined, number, object]> = [
    ['always, killed: restarted after the initial backoff', always, killed, undefined, 0, { to: 'backoff', delayMs: 50, reason: 'exited with signal SIGKILL; restarting in 50 ms' }],
    ['always without a backoff: the default delay', { policy: 'always' }, code(1), undefined, 0, { to: 'backoff', delayMs: defaultDelay }],
    ['always, exit 0: restarted too', always, code(0), undefined, 0, { to: 'backoff' }],
    ['always, an exit code in stopExitCodes: exited', { ...always, stopExitCodes: [3] }, code(3), undefined, 0, { to: 'exited', reason: "exited with exit code 3; restart policy 'always' does not restart it" }],
    ['on-failure, exit 0: exited', { policy: 'on-failure' }, code(0), undefined, 0, { to: 'exited' }],
    ['on-failure, exit 1: restarted', { policy: 'on-failure' }, code(1), undefined, 0, { to: 'backoff' }],
    ['never, exit 1: failed', { policy: 'never' }, code(1), undefined, 0, { to: 'failed', reason: "exited with exit code 1; restart policy 'never' does not restart it" }],
    ['never, killed: failed', { policy: 'never' }, killed, undefined, 0, { to: 'failed' }],
    ['always, contract used up: failed', always, killed, 2, 2, { to: 'failed', reason: 'exited with signal SIGKILL; restart limit 2 reached' }],
    ['always, contract not yet used up: restarted', always, killed, 2, 1, { to: 'backoff' }],
  ];
  it.each(cases)('adopted process exits: %s', (_, policy, st, limit, n, expected) => {
    expect(afterAdoptedExit(policy, st, limit, n)).toMatchObject(expected);
  });
});

describe('planner: adoption', () => {
  it('an adopted running dependency lets its dependents start; an adopted service nobody wants is stopped', () => {
    expect(planOf([up('db'), want('api'), down('old')], { api: ['db'] })).toEqual({ api: start, old: { kind: 'stop', reason: 'stop()' } });
  });

  it('an adopted service in backoff (its restart timer) whose dependency is gone drops the restart', () => {
    expect(planOf([want('db', { state: 'failed', reason: 'x' }), up('api', { state: 'backoff', restartCause: 'crash' })], { api: ['db'] })).toEqual({
      api: { kind: 'cancel-backoff', reason: 'waiting for db, which failed: x' },
    });
  });
});
