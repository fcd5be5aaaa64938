import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';
import { afterExit, resolveRestartPolicy, shouldRestart, DEFAULT_RESTART_POLICY } from '../src/restart-policy.js';
import { StateMachine, TRANSITIONS, type Transition } from '../src/state-machine.js';

const exited = (code: number) => ({ reason: 'exited' as const, exited: true, exitCode: code, signaled: false, signal: null });
const killed = { reason: 'signaled' as const, exited: false, exitCode: null, signaled: true, signal: 'SIGKILL' as const };

describe('Backoff', () => {
  it('grows by factor up to maxMs and resets', () => {
    const b = new Backoff({ initialMs: 100, factor: 2, maxMs: 500 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 500, 500]);
    b.reset();
    expect(b.next()).toBe(100);
  });

  it('spreads delays by ± jitter and never exceeds maxMs', () => {
    const low = new Backoff({ initialMs: 100, factor: 2, maxMs: 1000, jitter: 0.5 }, () => 0);
    const high = new Backoff({ initialMs: 100, factor: 2, maxMs: 1000, jitter: 0.5 }, () => 0.999999);
    expect(low.next()).toBe(50);
    expect(high.next()).toBe(150);
    for (let i = 0; i < 10; i++) expect(high.next()).toBeLessThanOrEqual(1000);
  });
});

describe('RestartPolicy', () => {
  it('fills in defaults', () => {
    expect(resolveRestartPolicy(undefined)).toEqual(DEFAULT_RESTART_POLICY);
    expect(resolveRestartPolicy({ policy: 'always' })).toMatchObject({ policy: 'always', maxRestarts: 10, backoff: { initialMs: 100 } });
  });

  it.each([
    [{ policy: 'sometimes' }],
    [{ policy: 'always', backoff: { initialMs: 100, factor: 0.5, maxMs: 1000 } }],
    [{ policy: 'always', backoff: { initialMs: 1000, factor: 2, maxMs: 100 } }],
    [{ policy: 'always', backoff: { initialMs: -1, factor: 2, maxMs: 100 } }],
    [{ policy: 'always', backoff: { initialMs: Number.NaN, factor: 2, maxMs: 100 } }],
    [{ policy: 'always', backoff: { initialMs: 1, factor: 2, maxMs: 100, jitter: 2 } }],
    [{ policy: 'always', maxRestarts: -1 }],
    [{ policy: 'always', maxRestarts: 1.5 }],
    [{ policy: 'always', windowMs: Number.NaN }],
    [{ policy: 'always', minUptimeMs: -1 }],
    [{ policy: 'always', stopExitCodes: [300] }],
  ])('refuses %j with ERR_LIBIPC_INVALID_ARGUMENT', (p) => {
    expect(() => resolveRestartPolicy(p as never)).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_INVALID_ARGUMENT' }));
  });

  it('decides restarts per policy', () => {
    const always = resolveRestartPolicy({ policy: 'always', stopExitCodes: [78] });
    const onFailure = resolveRestartPolicy({ policy: 'on-failure' });
    const never = resolveRestartPolicy({ policy: 'never' });
    expect([shouldRestart(always, exited(0)), shouldRestart(always, exited(1)), shouldRestart(always, exited(78))]).toEqual([true, true, false]);
    expect([shouldRestart(onFailure, exited(0)), shouldRestart(onFailure, exited(1)), shouldRestart(onFailure, killed)]).toEqual([false, true, true]);
    expect([shouldRestart(never, exited(1)), shouldRestart(never, killed)]).toEqual([false, false]);
  });
});

describe('state machine', () => {
  it('allows what the table lists, emits each transition, and refuses the rest with ERR_LIBIPC_ILLEGAL_STATE', () => {
    const seen: Transition[] = [];
    const sm = new StateMachine('stopped', (t) => seen.push(t));
    sm.to('starting', 'start()');
    sm.to('running', 'spawned');
    expect(() => sm.to('starting', 'nonsense')).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_ILLEGAL_STATE' }));
    expect(sm.state).toBe('running');
    sm.to('backoff', 'crashed');
    expect(() => sm.to('running', 'skip starting')).toThrowError(expect.objectContaining({ code: 'ERR_LIBIPC_ILLEGAL_STATE' }));
    sm.to('stopped', 'stop()');
    expect(seen.map((t) => `${t.from}>${t.to}`)).toEqual(['stopped>starting', 'starting>running', 'running>backoff', 'backoff>stopped']);
  });

  it('every state is reachable and every state can get back to stopped', () => {
    const states = Object.keys(TRANSITIONS);
    const reach = new Set(['stopped']);
    for (let i = 0; i < states.length; i++) for (const s of [...reach]) for (const t of TRANSITIONS[s as keyof typeof TRANSITIONS]) reach.add(t);
    expect([...reach].sort()).toEqual([...states].sort());
  });
});

describe('afterExit: the restart budget', () => {
  const always = resolveRestartPolicy({ policy: 'always', maxRestarts: 3, windowMs: 60_000, minUptimeMs: 1000 });
  const onFailure = resolveRestartPolicy({ policy: 'on-failure', maxRestarts: 3, windowMs: 60_000, minUptimeMs: 1000 });
  const now = 100_000;
  it.each([
    { what: 'first crash', p: always, st: killed, times: [], up: 50, to: 'backoff', left: [now] },
    { what: 'a fast crash loop uses the budget up', p: always, st: killed, times: [97_000, 98_000, 99_000], up: 200, to: 'failed', left: [97_000, 98_000, 99_000] },
    { what: 'restarts older than the window no longer count', p: always, st: killed, times: [10_000, 20_000, 99_000], up: 200, to: 'backoff', left: [99_000, now] },
    { what: 'a crash after minUptimeMs of uptime starts a fresh budget', p: always, st: killed, times: [97_000, 98_000, 99_000], up: 1000, to: 'backoff', left: [now] },
    { what: 'always: a clean exit that stayed up is restarted too', p: always, st: exited(0), times: [97_000, 98_000, 99_000], up: 4000, to: 'backoff', left: [now] },
    { what: 'on-failure: a clean exit stops', p: onFailure, st: exited(0), times: [], up: 4000, to: 'stopped', left: [] },
    { what: 'on-failure: a crash loop fails', p: onFailure, st: exited(1), times: [97_000, 98_000, 99_000], up: undefined, to: 'failed', left: [97_000, 98_000, 99_000] },
  ] as const)('$what', ({ p, st, times, up, to, left }) => {
    const r = afterExit(p, st, times, now, up, 'exited');
    expect(r.to).toBe(to);
    expect(r.restartTimes).toEqual(left);
  });
});
