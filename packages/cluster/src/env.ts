import type { AuthOptions, TlsOptions } from './security.js';

/** The connection part of ClusterNodeOptions, as etcdOptionsFromEnv() reads it. */
export interface EtcdConnection {
  endpoints: string[];
  tls?: TlsOptions;
  auth?: AuthOptions;
}

/**
 * Where etcd is and how to reach it, from environment variables in the style of etcdctl's: `ETCD_ENDPOINTS`
 * (comma-separated, default http://127.0.0.1:2379), `ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY` (file paths: TLS),
 * `ETCD_USERNAME` and `ETCD_PASSWORD` (auth). Spread it into ClusterNode.join's options.
 */
export function etcdOptionsFromEnv(env: Record<string, string | undefined> = process.env): EtcdConnection {
  const endpoints = (env.ETCD_ENDPOINTS || 'http://127.0.0.1:2379').split(',').map((e) => e.trim()).filter(Boolean);
  const out: EtcdConnection = { endpoints };
  const tls: TlsOptions = {};
  if (env.ETCD_CACERT) tls.ca = env.ETCD_CACERT;
  if (env.ETCD_CERT) tls.cert = env.ETCD_CERT;
  if (env.ETCD_KEY) tls.key = env.ETCD_KEY;
  if (Object.keys(tls).length > 0) out.tls = tls;
  if (env.ETCD_USERNAME) out.auth = { username: env.ETCD_USERNAME, password: env.ETCD_PASSWORD ?? '' };
  return out;
}
