import { connect as tlsConnect } from 'node:tls';
import { ExponentialBackoff, handleWhen, type IBackoff, noop, retry } from 'cockatiel';
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, type IOptions, isRecoverableError } from 'etcd3';
import { ClusterUnavailableError, LibipcError, PermissionError } from '@libipc/shm';
import { type AuthOptions, ClusterAuthError, ClusterTlsError, type ParsedTls } from './security.js';

export interface ConnectionOptions {
  endpoints: string[];
  requestTimeoutMs: number;
  tls: ParsedTls | undefined;
  auth: AuthOptions | undefined;
}

/**
 * The etcd client of one node. Tuned to fail fast and come back fast: every unary call has a deadline (a
 * stopped etcd must not hang us), no circuit breaker (it would keep refusing for seconds after etcd is back),
 * one retry per extra endpoint, and reconnects (gRPC channel and watch streams) within a second.
 */
export function createClient(opts: ConnectionOptions): Etcd3 {
  const { endpoints, requestTimeoutMs, tls, auth } = opts;
  const options: IOptions = {
    hosts: endpoints,
    dialTimeout: requestTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
    faultHandling: {
      host: () => noop,
      global: endpoints.length > 1 ? retry(handleWhen(isRecoverableError), { maxAttempts: endpoints.length - 1 }) : noop,
      // etcd3 calls next() on this itself (its own default is a factory too, despite the declared type).
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }) as unknown as IBackoff<unknown>,
    },
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.min_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    },
  };
  if (tls) {
    // etcd3 wants a root certificate whenever it is given credentials: an empty one means the system's CAs.
    options.credentials = { rootCertificate: tls.ca ?? (undefined as unknown as Buffer), privateKey: tls.key, certChain: tls.cert };
  }
  if (auth) options.auth = { username: auth.username, password: auth.password };
  return new Etcd3(options);
}

/** Who this node is to etcd, and what it touches: for error messages that say what to grant. */
export interface Identity {
  prefix: string;
  cluster: string;
  auth: AuthOptions | undefined;
}

/** The least-privilege role a cluster needs, as the etcdctl lines that create it. */
export function roleAdvice(id: Identity): string {
  const role = `libipc-${id.cluster}`;
  const user = id.auth?.username ?? '<user>';
  return `etcdctl role add ${role} && etcdctl role grant-permission ${role} readwrite ${id.prefix} --prefix && etcdctl user grant-role ${user} ${role}`;
}

/**
 * A failure that retrying will not cure (credentials, permissions), as the error to give the caller; undefined
 * for anything else (etcd unreachable, slow, restarting).
 */
export function refusal(err: unknown, id: Identity): LibipcError | undefined {
  if (err instanceof LibipcError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof EtcdAuthenticationFailedError) {
    return new ClusterAuthError(
      `etcd refused user '${id.auth?.username}': wrong username or password; check auth.username and auth.password (ETCD_USERNAME / ETCD_PASSWORD in the examples)`,
      { cause: err },
    );
  }
  if (/authentication is not enabled/.test(message)) {
    return new ClusterAuthError("etcd does not have authentication enabled, but 'auth' was given: drop 'auth', or enable it on etcd (etcdctl auth enable)", { cause: err });
  }
  if (/user name is empty|invalid auth token|user name not found/.test(message) && !id.auth) {
    return new ClusterAuthError("etcd requires authentication: pass 'auth: { username, password }' (a user with a role on the cluster's prefix)", { cause: err });
  }
  if (err instanceof EtcdPermissionDeniedError) {
    const who = id.auth ? `user '${id.auth.username}'` : "a client without 'auth' (etcd has authentication on: pass 'auth')";
    const e = new PermissionError(
      `etcd denied ${who} access to the key prefix '${id.prefix}': the user needs a role with readwrite on that prefix: ${roleAdvice(id)}`,
    );
    Object.defineProperty(e, 'cause', { value: err, configurable: true, writable: true });
    return e;
  }
  return undefined;
}

/** Any failure of an etcd call, as the error our callers see (a LibipcError passes through). */
export function unavailable(what: string, cause: unknown): LibipcError {
  if (cause instanceof LibipcError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ClusterUnavailableError(
    `${what}: etcd cannot be reached (${detail.slice(0, 200)}); the local address book keeps serving, and the node re-joins when etcd answers again`,
    { cause },
  );
}

/** TLS alerts and verification codes that mean "this certificate is the problem", not "etcd is down". */
const TLS_FAILURE = /CERT|ALERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME|IP_ADDRESS|SSL|TLS|altnames/i;

/**
 * gRPC reports a failed TLS handshake as "no connection established" with no reason: shake hands with one
 * endpoint ourselves (same material) to tell a certificate problem from an etcd that is down.
 */
export async function diagnoseTls(endpoint: string, tls: ParsedTls, timeoutMs: number): Promise<ClusterTlsError | undefined> {
  const m = /^(?:https?:\/\/)?\[?([^\]/]+?)\]?:(\d+)\/?$/.exec(endpoint);
  if (!m) return undefined;
  const [, host, port] = m;
  return new Promise((resolve) => {
    let done = false;
    const finish = (err: Error | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (!err) return resolve(undefined);
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (!TLS_FAILURE.test(`${code} ${err.message}`)) return resolve(undefined);
      const side = /ALERT/i.test(code) ? 'etcd refused this client\'s certificate (tls.cert / tls.key: not signed by a CA etcd trusts, or missing)' : "this client does not trust etcd's certificate (tls.ca: not the CA that signed it, or the certificate does not name this host)";
      resolve(new ClusterTlsError(`TLS handshake with etcd at ${host}:${port} failed: ${side}: ${code || err.message}`, { cause: err }));
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const socket = tlsConnect({ host, port: Number(port), ca: tls.ca, cert: tls.cert, key: tls.key, ALPNProtocols: ['h2'], servername: /^[\d.:]+$/.test(host!) ? undefined : host });
    socket.on('error', finish);
    // TLS 1.3: the server checks our certificate after the handshake; its verdict comes with the first read.
    socket.on('secureConnect', () => {
      socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0', 'latin1'));
      socket.once('data', () => finish(undefined));
    });
    socket.on('close', () => finish(undefined));
  });
}

/**
 * Why a join failed, as one coded error: a refusal (credentials, permission), a TLS problem found by
 * diagnoseTls, or ERR_LIBIPC_CLUSTER_UNAVAILABLE.
 */
export async function joinFailure(what: string, err: unknown, id: Identity, conn: ConnectionOptions): Promise<LibipcError> {
  const refused = refusal(err, id);
  if (refused) return refused;
  if (conn.tls) {
    for (const endpoint of conn.endpoints) {
      const bad = await diagnoseTls(endpoint, conn.tls, Math.min(conn.requestTimeoutMs, 3000));
      if (bad) return bad;
    }
  }
  return unavailable(what, err);
}
