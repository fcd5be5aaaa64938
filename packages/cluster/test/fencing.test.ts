// The self-fencing decisions, as tables: when a node must fence (from the send time of its last renewed
// keepalive), which daemons it stops, and the connection options read from the environment.
import { describe, expect, it } from 'vitest';
import { fenceDelay, splitFenced } from '../src/fencing.js';
import { etcdOptionsFromEnv } from '../src/index.js';
import type { Launcher } from '../src/index.js';

describe('fenceDelay(now, lastSentAt, ttlMs, marginMs)', () => {
  const rows: Array<[number, number, number, number, number]> = [
    // now, last renewed keepalive sent at, TTL, margin → ms until the node must fence (≤ 0: now)
    [1000, 1000, 5000, 1250, 3750],
    [4000, 1000, 5000, 1250, 750],
    [4750, 1000, 5000, 1250, 0],
    [9000, 1000, 5000, 1250, -4250], // a timer that fired late: fence at once
    [1000, 1000, 2000, 0, 2000], // no margin: right at the earliest expiry
    [1500, 1000, 2000, 500, 1000],
  ];
  for (const [now, sent, ttl, margin, want] of rows) {
    it(`now ${now}, sent ${sent}, TTL ${ttl}, margin ${margin} → ${want}`, () => {
      expect(fenceDelay(now, sent, ttl, margin)).toBe(want);
    });
  }
  it('a later renewal always moves the deadline later; a bigger margin always earlier', () => {
    expect(fenceDelay(0, 200, 3000, 500)).toBeGreaterThan(fenceDelay(0, 100, 3000, 500));
    expect(fenceDelay(0, 100, 3000, 900)).toBeLessThan(fenceDelay(0, 100, 3000, 500));
  });
});

describe('splitFenced', () => {
  const spawn = async () => undefined;
  const launchers = new Map<string, Launcher>([
    ['plain', { spawn }],
    ['dup-safe', { spawn, keepRunningWhenFenced: true }],
    ['explicit-no', { spawn, keepRunningWhenFenced: false }],
  ]);
  const rows: Array<[string, string, 'stop' | 'keep']> = [
    ['plain', 'a', 'stop'],
    ['dup-safe', 'b', 'keep'],
    ['explicit-no', 'c', 'stop'],
    ['gone', 'd', 'stop'], // a launcher no longer known: stopping is the safe side
  ];
  it('stops every daemon except those whose launcher opted in', () => {
    const { stop, keep } = splitFenced(rows.map(([launcher, processName]) => ({ launcher, processName })), launchers);
    expect(stop.map((d) => d.processName)).toEqual(rows.filter((r) => r[2] === 'stop').map((r) => r[1]));
    expect(keep.map((d) => d.processName)).toEqual(rows.filter((r) => r[2] === 'keep').map((r) => r[1]));
  });
});

describe('etcdOptionsFromEnv', () => {
  const rows: Array<[Record<string, string>, unknown]> = [
    [{}, { endpoints: ['http://127.0.0.1:2379'] }],
    [{ ETCD_ENDPOINTS: 'https://a:2379, https://b:2379' }, { endpoints: ['https://a:2379', 'https://b:2379'] }],
    [{ ETCD_CACERT: '/ca.crt' }, { endpoints: ['http://127.0.0.1:2379'], tls: { ca: '/ca.crt' } }],
    [
      { ETCD_ENDPOINTS: 'https://a:2379', ETCD_CACERT: '/ca', ETCD_CERT: '/c', ETCD_KEY: '/k', ETCD_USERNAME: 'u', ETCD_PASSWORD: 'p' },
      { endpoints: ['https://a:2379'], tls: { ca: '/ca', cert: '/c', key: '/k' }, auth: { username: 'u', password: 'p' } },
    ],
    [{ ETCD_USERNAME: 'u' }, { endpoints: ['http://127.0.0.1:2379'], auth: { username: 'u', password: '' } }],
  ];
  for (const [env, want] of rows) {
    it(JSON.stringify(env), () => {
      expect(etcdOptionsFromEnv(env)).toEqual(want);
    });
  }
});
