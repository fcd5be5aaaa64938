import { InvalidArgumentError, option, parseOptions } from '@libipc/shm';
import { newToken } from './access.js';
import { Actions } from './actions.js';
import { ChannelSource } from './channel-source.js';
import { DashboardState } from './dashboard-state.js';
import { EventStream } from './event-stream.js';
import { RegistrySource } from './registry-source.js';
import { DashboardServer } from './server.js';
import { ShmWatch } from './shm-watch.js';
import { loadStaticFiles } from './static-files.js';
import { SupervisorSource } from './supervisor-source.js';

export interface DashboardOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** A supervisor store (`libipc run --store`); default: every `libipc run` of this user. */
  store?: string;
  /** Only this registry domain; default: every domain, and new ones as they appear. */
  domain?: string;
  /** The action token; default: a fresh random one. */
  token?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface Dashboard {
  url: string;
  token: string;
  close(): Promise<void>;
}

/** Registries and heartbeats, channel counters and process liveness change without events: read again this often while a page is open. */
const GAUGE_MS = 1000;

const OPTIONS = {
  port: option.int(0, 65_535),
  host: option.string(255),
  store: option.string(4096),
  domain: option.custom<string>((v) => typeof v === 'string' && /^[A-Za-z0-9._-]{1,63}$/.test(v), 'a domain name (1-63 of [A-Za-z0-9._-])'),
  token: option.custom<string>((v) => typeof v === 'string' && /^[\x21-\x7e]{1,512}$/.test(v), 'a token of 1-512 visible ASCII characters'),
  env: option.custom<NodeJS.ProcessEnv>((v) => typeof v === 'object' && v !== null, 'an environment object'),
  cwd: option.string(4096),
};

/**
 * Starts `libipc dashboard`: follows registries, supervisor stores and channels, and serves the page and its
 * API. Resolves once listening, with the URL (the port actually bound) and the action token.
 */
export async function startDashboard(opts?: DashboardOptions): Promise<Dashboard> {
  const o = parseOptions(opts, OPTIONS, 'dashboard options');
  const token = o.token ?? newToken();
  const env = o.env ?? process.env;
  const files = loadStaticFiles();
  const state = new DashboardState({
    registry: { domains: [], entries: [], groups: [] },
    services: { stores: [], services: [] },
    channels: { channels: [], total: 0 },
  });
  const shm = new ShmWatch();
  const registry = new RegistrySource(state, o.domain);
  const channels = new ChannelSource(state);
  const supervisor = new SupervisorSource(state, { store: o.store, env, cwd: o.cwd ?? process.cwd() });
  let gauge: NodeJS.Timeout | undefined;
  const sample = () => {
    registry.sample();
    channels.sample();
    supervisor.sample();
  };
  const stream = new EventStream(state, (pages) => {
    if (pages > 0 && !gauge) {
      gauge = setInterval(sample, GAUGE_MS);
      gauge.unref();
    } else if (pages === 0 && gauge) {
      clearInterval(gauge);
      gauge = undefined;
    }
  });
  const stopSources = async () => {
    if (gauge) clearInterval(gauge);
    stream.close();
    shm.close();
    channels.close();
    supervisor.close();
    await registry.close();
  };
  let server: DashboardServer;
  try {
    shm.start();
    registry.start(shm);
    channels.start(shm);
    supervisor.start();
    server = await DashboardServer.listen(o.host ?? '127.0.0.1', o.port ?? 0, { state, stream, actions: new Actions(supervisor, state, env), files, token, sample });
  } catch (err) {
    await stopSources();
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new InvalidArgumentError(`port ${o.port} on ${o.host ?? '127.0.0.1'} is in use; pick another --port (0 picks a free one)`);
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') throw new InvalidArgumentError(`cannot listen on ${o.host}: not an address of this machine`);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    token,
    close: () =>
      (closing ??= (async () => {
        stream.close(); // end the streams first, or server.close waits for them
        await server.close();
        await stopSources();
      })()),
  };
}
