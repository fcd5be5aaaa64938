import { ExponentialBackoff, handleWhen, type IBackoff, noop, retry } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import { ClusterUnavailableError, LibipcError } from '@libipc/shm';

/**
 * The etcd client of one node. Tuned to fail fast and come back fast: every unary call has a deadline (a
 * stopped etcd must not hang us), no circuit breaker (it would keep refusing for seconds after etcd is back),
 * one retry per extra endpoint, and reconnects (gRPC channel and watch streams) within a second.
 */
export function createClient(endpoints: string[], requestTimeoutMs: number): Etcd3 {
  return new Etcd3({
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
  });
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
