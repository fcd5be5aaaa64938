// The preload's reading of LIBIPC_LISTEN_FDS and of listen() arguments, and the env a service with `listen` gets.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { PRELOAD_PATH, listenEnv } from '../src/listen-sockets.js';

const preload = createRequire(import.meta.url)(PRELOAD_PATH) as {
  parseListenFds(v: unknown): Map<number, number>;
  requestedPort(args: unknown[]): number | undefined;
};

describe('listen preload', () => {
  it.each<[unknown, Array<[number, number]>]>([
    ['3000:4', [[3000, 4]]],
    ['3000:4,3001:5', [[3000, 4], [3001, 5]]],
    [' 3000:4 , 3001:5 ', [[3000, 4], [3001, 5]]],
    ['3000:4,3000:9', [[3000, 4]]],
    ['0:4,70000:5,3000:2,x,3000', []],
    ['', []],
    [undefined, []],
  ])('LIBIPC_LISTEN_FDS=%j', (value, expected) => {
    expect([...preload.parseListenFds(value)]).toEqual(expected);
  });

  it.each<[string, unknown[], number | undefined]>([
    ['listen(3000)', [3000], 3000],
    ["listen('3000', '0.0.0.0', cb)", ['3000', '0.0.0.0', () => {}], 3000],
    ['listen({ port: 3000, host })', [{ port: 3000, host: '::' }], 3000],
    ['listen(0): any port, not ours', [0], undefined],
    ['listen() with nothing', [], undefined],
    ['a Unix socket path', ['/tmp/app.sock'], undefined],
    ['an fd already', [{ fd: 4 }], undefined],
    ['a handle', [{ handle: {} }], undefined],
    ['{ path }', [{ path: '/tmp/a', port: 3000 }], undefined],
  ])('%s → %s', (_, args, expected) => {
    expect(preload.requestedPort(args)).toBe(expected);
  });

  it('listenEnv names the fds from 4 on and adds the preload to NODE_OPTIONS, after what was there', () => {
    expect(listenEnv([], {})).toEqual({});
    expect(listenEnv([3000, 3001], { NODE_OPTIONS: '--max-old-space-size=100' })).toEqual({
      LIBIPC_LISTEN_FDS: '3000:4,3001:5',
      NODE_OPTIONS: `--max-old-space-size=100 --require ${PRELOAD_PATH}`,
    });
  });
});
