import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { LibipcError } from '@libipc/shm';

/** TLS to etcd: each field a file path (read once, at join) or the PEM contents as a Buffer. */
export interface TlsOptions {
  /** The CA that signed etcd's server certificate (default: the system's CAs). */
  ca?: string | Buffer;
  /** This client's certificate (etcd run with --client-cert-auth needs one); with `key`. */
  cert?: string | Buffer;
  /** The private key of `cert`. */
  key?: string | Buffer;
}

/** etcd password authentication. */
export interface AuthOptions {
  username: string;
  password: string;
}

/** TLS material read and checked: PEM buffers. */
export interface ParsedTls {
  ca: Buffer | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
}

/** A certificate or key that cannot be used, or a TLS handshake etcd or this client refused. */
export class ClusterTlsError extends LibipcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LIBIPC_TLS', message, options);
  }
}

/** etcd refused the credentials (wrong user or password), or auth is on one side only. */
export class ClusterAuthError extends LibipcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LIBIPC_AUTH', message, options);
  }
}

const material = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.length > 0) || Buffer.isBuffer(v);

export function isTls(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) return false;
  const t = value as Record<string, unknown>;
  if (!Object.keys(t).every((k) => k === 'ca' || k === 'cert' || k === 'key')) return false;
  if (![t.ca, t.cert, t.key].every(material)) return false;
  // A certificate without its key (or the reverse) cannot authenticate anyone.
  return (t.cert == null) === (t.key == null);
}

export function isAuth(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const a = value as Record<string, unknown>;
  return Object.keys(a).every((k) => k === 'username' || k === 'password') && typeof a.username === 'string' && a.username.length > 0 && typeof a.password === 'string';
}

function read(what: string, v: string | Buffer | undefined): Buffer | undefined {
  if (v === undefined || v === null) return undefined;
  if (Buffer.isBuffer(v)) return v;
  try {
    return readFileSync(v);
  } catch (err) {
    throw new ClusterTlsError(`tls.${what}: cannot read '${v}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a readable PEM file or its contents as a Buffer`, { cause: err });
  }
}

/** Reads the files and checks that the material is PEM that belongs together (the key matches the certificate). */
export function loadTls(t: TlsOptions): ParsedTls {
  const parsed = { ca: read('ca', t.ca), cert: read('cert', t.cert), key: read('key', t.key) };
  for (const what of ['ca', 'cert'] as const) {
    const v = parsed[what];
    if (!v) continue;
    try {
      new X509Certificate(v);
    } catch (err) {
      throw new ClusterTlsError(`tls.${what} is not a PEM certificate (${(err as Error).message}); give the certificate file or its contents`, { cause: err });
    }
  }
  if (parsed.key) {
    try {
      createPrivateKey(parsed.key);
    } catch (err) {
      throw new ClusterTlsError(`tls.key is not a PEM private key (${(err as Error).message}); give the key file or its contents (unencrypted)`, { cause: err });
    }
  }
  try {
    createSecureContext({ ca: parsed.ca, cert: parsed.cert, key: parsed.key });
  } catch (err) {
    throw new ClusterTlsError(`tls: the certificate material cannot be used (${(err as Error).message}); check that ca, cert and key are PEM and that the key belongs to the certificate`, { cause: err });
  }
  return parsed;
}
