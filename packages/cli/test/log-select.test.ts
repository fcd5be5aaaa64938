// Which log files `libipc logs [query]` reads (pure, as a table): all, a glob, a name, `<store>:<name>`, ambiguity.
import type { ServiceSpec } from '@libipc/supervisor';
import { describe, expect, it } from 'vitest';
import { selectLogs, storeLabel } from '../src/log-select.js';

const spec = (name: string, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({ name, command: 'x', logs: { dir: `/logs/${name}` }, ...extra });
const a = { store: '/srv/a/services.db', specs: [spec('api'), spec('db'), spec('worker', { instances: 2 }), spec('quiet', { logs: 'inherit' })] };
const b = { store: '/run/libipc/run-42.store.json', specs: [spec('api'), spec('cron')] };

describe('selectLogs', () => {
  it.each([
    { q: undefined, stores: [a], labels: ['api', 'db', 'worker.0', 'worker.1'] },
    { q: '*', stores: [a], labels: ['api', 'db', 'worker.0', 'worker.1'] },
    { q: 'worker', stores: [a], labels: ['worker.0', 'worker.1'] },
    { q: 'worker.1', stores: [a, b], labels: ['worker.1'] },
    { q: 'w*', stores: [a], labels: ['worker.0', 'worker.1'] },
    { q: '{db,worker}', stores: [a], labels: ['db', 'worker.0', 'worker.1'] },
    { q: 'api*', stores: [a, b], labels: ['services:api', 'run-42:api'] },
    { q: undefined, stores: [a, b], labels: ['services:api', 'services:db', 'services:worker.0', 'services:worker.1', 'run-42:api', 'run-42:cron'] },
    { q: 'run-42:api', stores: [a, b], labels: ['api'] },
    { q: 'services:', stores: [a, b], labels: ['api', 'db', 'worker.0', 'worker.1'] },
    { q: '/srv/a/services.db:db', stores: [a, b], labels: ['db'] },
  ])('$q in $stores.length store(s)', ({ q, stores, labels }) => {
    expect(selectLogs(q, stores).map((t) => t.label)).toEqual(labels);
  });

  it.each([
    { q: 'api', stores: [a, b], code: 'ERR_LIBIPC_INVALID_ARGUMENT', message: /'api' is in 2 runs' stores; name one: services:api, run-42:api/ },
    { q: 'nope', stores: [a], code: 'ERR_LIBIPC_NOT_FOUND', message: /no service named 'nope' in services/ },
    { q: 'x*', stores: [a], code: 'ERR_LIBIPC_NOT_FOUND', message: /no service matches 'x\*'/ },
    { q: 'other:api', stores: [a, b], code: 'ERR_LIBIPC_NOT_FOUND', message: /no run's store is named 'other'; the stores are: services, run-42/ },
    { q: 'quiet', stores: [a], code: 'ERR_LIBIPC_ILLEGAL_STATE', message: /does not log to files/ },
  ])('$q: $code', ({ q, stores, code, message }) => {
    expect(() => selectLogs(q, stores)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });

  it('names a store by its file name without the extension', () => {
    expect([storeLabel('/a/services.db'), storeLabel('/b/x.json'), storeLabel('/r/run-7.store.json'), storeLabel('/r/run-7.db')]).toEqual(['services', 'x', 'run-7', 'run-7']);
  });
});
