import type { ServiceRegistry } from '@libipc/registry';
import { InvalidArgumentError, MAX_TIMER_MS, option, parseOptions, validateName } from '@libipc/shm';
import { type AuthOptions, type ParsedTls, type TlsOptions, isAuth, isTls, loadTls } from './security.js';

export interface ClusterNodeOptions {
  /** etcd client URLs, e.g. ['http://127.0.0.1:2379']. */
  endpoints: string[];
  /** The cluster's name: nodes of one cluster see each other; other clusters on the same etcd are invisible. */
  cluster: string;
  /** This node's name, unique in the cluster. */
  nodeName: string;
  /** Lease TTL in seconds (default 5): a crashed node disappears from every address book within it. */
  leaseTtlS?: number;
  /** How often the leader re-checks that every daemon of every launcher's recover() runs (default 10,000 ms). */
  recoveryIntervalMs?: number;
  /** Deadline of each etcd request (default 5,000 ms); past it the call fails with ERR_LIBIPC_CLUSTER_UNAVAILABLE. */
  requestTimeoutMs?: number;
  /** How long spawnRegister waits for another node to start a daemon (default 30,000 ms). */
  spawnTimeoutMs?: number;
  /** Mirror this @libipc/registry domain into the cluster: its live entries become this node's registrations. */
  registry?: ServiceRegistry;
  /** TLS to etcd: the CA that signed etcd's certificate, and this client's certificate and key (paths or contents). */
  tls?: TlsOptions;
  /** etcd password authentication (a user whose role can read and write the cluster's key prefix). */
  auth?: AuthOptions;
  /**
   * A node that cannot renew its lease stops its daemons this long before the lease can have expired on etcd's
   * side (counted from when the last renewed keepalive was sent); default a quarter of the lease TTL.
   */
  fenceMarginMs?: number;
}

export interface ParsedClusterOptions {
  endpoints: string[];
  cluster: string;
  nodeName: string;
  leaseTtlS: number;
  recoveryIntervalMs: number;
  requestTimeoutMs: number;
  spawnTimeoutMs: number;
  registry: ServiceRegistry | undefined;
  tls: ParsedTls | undefined;
  auth: AuthOptions | undefined;
  fenceMarginMs: number;
}

/** `http(s)://host:port` or `host:port` (etcdctl's form, plain http); IPv6 hosts in brackets. */
const ENDPOINT = /^(https?:\/\/)?([^/\s:@[\]]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})\/?$/;

function isEndpoint(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const m = ENDPOINT.exec(value);
  if (!m) return false;
  const port = Number(m[3]);
  return port >= 1 && port <= 65535;
}

/** Duck-typed, so that a registry from another copy of @libipc/registry is accepted too. */
function isRegistry(value: unknown): boolean {
  const r = value as Partial<ServiceRegistry> | null;
  return typeof r === 'object' && r !== null && typeof r.watch === 'function' && typeof r.list === 'function';
}

const anything = option.custom<unknown>(() => true, 'given');

const SHAPE = {
  endpoints: option.custom<string[]>(
    (v) => Array.isArray(v) && v.length >= 1 && v.length <= 32 && v.every(isEndpoint),
    "an array of 1 to 32 etcd client URLs with a port, such as ['http://127.0.0.1:2379'] (or '127.0.0.1:2379')",
  ),
  cluster: anything,
  nodeName: anything,
  leaseTtlS: option.int(1, 3600),
  recoveryIntervalMs: option.ms(100),
  requestTimeoutMs: option.ms(100, 600_000),
  spawnTimeoutMs: option.ms(100, MAX_TIMER_MS),
  registry: option.custom<ServiceRegistry>(isRegistry, 'a ServiceRegistry from @libipc/registry'),
  tls: option.custom<TlsOptions>(isTls, "{ ca?, cert?, key? }, each a file path or a Buffer (cert and key together)"),
  auth: option.custom<AuthOptions>(isAuth, "{ username, password }, two strings (the username not empty)"),
  fenceMarginMs: option.ms(0, 3_600_000),
};

export function parseClusterOptions(value: unknown): ParsedClusterOptions {
  if (value === undefined || value === null) {
    throw new InvalidArgumentError(
      "ClusterNode.join needs options: { endpoints: ['http://127.0.0.1:2379'], cluster: 'name', nodeName: 'name' }",
    );
  }
  const o = parseOptions(value, SHAPE, 'ClusterNode.join options');
  if (o.endpoints === undefined) {
    throw new InvalidArgumentError("ClusterNode.join options: 'endpoints' is required, e.g. ['http://127.0.0.1:2379']");
  }
  if (o.cluster === undefined) throw new InvalidArgumentError("ClusterNode.join options: 'cluster' (a name) is required");
  if (o.nodeName === undefined) throw new InvalidArgumentError("ClusterNode.join options: 'nodeName' (a name) is required");
  validateName(o.cluster, 'cluster');
  validateName(o.nodeName, 'nodeName');
  const leaseTtlS = o.leaseTtlS ?? 5;
  // A margin of 2/3 of the TTL or more would fence between two keepalives (they go every TTL/3).
  const fenceMarginMs = o.fenceMarginMs ?? leaseTtlS * 250;
  if (fenceMarginMs >= (leaseTtlS * 2000) / 3) {
    throw new InvalidArgumentError(
      `ClusterNode.join options: fenceMarginMs (${fenceMarginMs}) must be under 2/3 of the lease TTL (${Math.floor((leaseTtlS * 2000) / 3)} ms for leaseTtlS ${leaseTtlS}), or the node would fence itself between two keepalives; raise leaseTtlS or lower the margin`,
    );
  }
  if (o.tls && o.endpoints.some((e) => e.startsWith('http://'))) {
    throw new InvalidArgumentError("ClusterNode.join options: with 'tls', endpoints are https:// (or host:port), not http://");
  }
  return {
    endpoints: [...o.endpoints],
    cluster: o.cluster,
    nodeName: o.nodeName,
    leaseTtlS,
    recoveryIntervalMs: o.recoveryIntervalMs ?? 10_000,
    requestTimeoutMs: o.requestTimeoutMs ?? 5_000,
    spawnTimeoutMs: o.spawnTimeoutMs ?? 30_000,
    registry: o.registry,
    tls: o.tls ? loadTls(o.tls) : undefined,
    auth: o.auth ? { username: o.auth.username, password: o.auth.password } : undefined,
    fenceMarginMs,
  };
}

/** Arguments travel through etcd as JSON: refuse what JSON cannot carry faithfully, and anything huge. */
export const MAX_ARGS_BYTES = 64 * 1024;

export function validateArgs(args: unknown, what: string): unknown[] | undefined {
  if (args === undefined || args === null) return undefined;
  if (!Array.isArray(args)) throw new InvalidArgumentError(`${what}: args must be an array, got ${typeof args}`);
  let json: string;
  try {
    json = JSON.stringify(args, (_k, v: unknown) => {
      if (typeof v === 'bigint' || typeof v === 'function' || typeof v === 'symbol') throw new TypeError(`a ${typeof v}`);
      if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError(String(v));
      return v;
    });
  } catch (err) {
    throw new InvalidArgumentError(`${what}: args must be JSON-serializable (they travel to another node), but hold ${(err as Error).message}`);
  }
  if (Buffer.byteLength(json) > MAX_ARGS_BYTES) {
    throw new InvalidArgumentError(`${what}: args are ${Buffer.byteLength(json)} bytes as JSON, the most is ${MAX_ARGS_BYTES}; pass a key to the data instead`);
  }
  return JSON.parse(json) as unknown[];
}
