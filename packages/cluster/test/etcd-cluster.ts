// A three-member etcd on 127.0.0.1 for the production-shape tests: client TLS (certificates made here with
// openssl: a CA, a server certificate for 127.0.0.1, a client certificate, and a second CA nobody trusts),
// password auth with a root user and a least-privilege role set up with etcdctl (the README's commands),
// members killed and restarted one at a time. Every process is stopped and the temp dir removed by close().
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Etcd3 } from 'etcd3';
import { dataRoot, etcdBinary } from './etcd.js';

export interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing etcd trusts, and a client certificate it signed. */
  otherCa: string;
  otherCert: string;
  otherKey: string;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find(existsSync);

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** EC P-256 keys: quick to make and to handshake on a loaded machine. */
export function makeCerts(dir: string): Certs {
  mkdirSync(dir, { recursive: true });
  const ext = (name: string, text: string) => (writeFileSync(join(dir, name), text), name);
  const ca = (name: string) =>
    openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`]);
  const leaf = (name: string, signer: string, cn: string, extensions: string) => {
    openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.crt`, '-CAkey', `${signer}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', ext(`${name}.ext`, extensions)]);
  };
  ca('ca');
  ca('other-ca');
  leaf('server', 'ca', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  leaf('client', 'ca', 'libipc-client', 'extendedKeyUsage=clientAuth\n');
  leaf('other', 'other-ca', 'libipc-client', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string) => join(dir, f);
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    otherCa: p('other-ca.crt'),
    otherCert: p('other.crt'),
    otherKey: p('other.key'),
  };
}

export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createServer().listen(0, '127.0.0.1');
      await once(s, 'listening');
      return s;
    }),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => (s.close(), once(s, 'close'))));
  return ports;
}

export interface Member {
  readonly name: string;
  readonly endpoint: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again (same ports, same data): it re-joins the cluster. */
  start(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: Member[];
  readonly endpoints: string[];
  readonly certs: Certs | undefined;
  /** The root user's password (auth enabled) or undefined. */
  readonly rootPassword: string | undefined;
  /** A client as root (TLS and auth as configured), for the tests' own reads and setup; `only`: one member. */
  admin(only?: Member): Etcd3;
  /** The member that leads now (asks the running members). */
  leader(): Promise<Member>;
  /** Runs etcdctl against the running members (as root when auth is on). */
  etcdctl(args: string[]): string;
  close(): Promise<void>;
}

/** Starts `size` members (default 3) with client TLS and auth when asked; resolves once they serve clients. */
export async function startEtcdCluster(opts: { size?: number; tls?: boolean; auth?: boolean } = {}): Promise<EtcdCluster> {
  const bin = etcdBinary();
  const size = opts.size ?? 3;
  const dir = mkdtempSync(join(dataRoot(), 'libipc-etcd-'));
  const certs = opts.tls ? makeCerts(join(dir, 'certs')) : undefined;
  const ports = await freePorts(2 * size);
  const scheme = certs ? 'https' : 'http';
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  const peers = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(',');
  const token = `libipc-${process.pid}-${Date.now()}`;
  const members: Array<Member & { child?: ChildProcess }> = [];
  const rootPassword = opts.auth ? 'root-secret' : undefined;

  const makeMember = (name: string, i: number) => {
    const endpoint = `${scheme}://127.0.0.1:${ports[2 * i]}`;
    const peer = `http://127.0.0.1:${ports[2 * i + 1]}`;
    let child: ChildProcess | undefined;
    let exited: Promise<unknown> = Promise.resolve();
    let first = true;
    const m: Member = {
      name,
      endpoint,
      get pid() {
        return child?.pid;
      },
      get running() {
        return child !== undefined;
      },
      async start() {
        const args = [
          '--name', name,
          '--data-dir', join(dir, name),
          '--listen-client-urls', endpoint,
          '--advertise-client-urls', endpoint,
          '--listen-peer-urls', peer,
          '--initial-advertise-peer-urls', peer,
          '--initial-cluster', peers,
          '--initial-cluster-token', token,
          '--initial-cluster-state', first ? 'new' : 'existing',
          // Generous for a loaded 2-vCPU machine: a heartbeat late past the election timeout starts an election.
          '--heartbeat-interval', '200',
          '--election-timeout', '2000',
          '--logger', 'zap',
          '--log-outputs', 'stderr',
          ...(certs ? ['--cert-file', certs.serverCert, '--key-file', certs.serverKey, '--trusted-ca-file', certs.ca, '--client-cert-auth'] : []),
        ];
        first = false;
        const c = SETPRIV
          ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
          : spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        child = c;
        exited = once(c, 'exit');
        const tail: string[] = [];
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`etcd member ${name} not ready within 30 s; its log:\n${tail.join('\n')}`)), 30_000);
          createInterface({ input: c.stderr! }).on('line', (line) => {
            tail.push(line);
            if (tail.length > 40) tail.shift();
            if (line.includes('ready to serve client requests') || line.includes('serving client traffic')) {
              clearTimeout(timer);
              resolve();
            }
          });
          c.once('exit', (code, signal) => {
            clearTimeout(timer);
            reject(new Error(`etcd member ${name} exited (${code ?? signal}) before it was ready; its log:\n${tail.join('\n')}`));
          });
        }).catch(async (err: unknown) => {
          await m.kill();
          throw err;
        });
      },
      async kill(signal: NodeJS.Signals = 'SIGKILL') {
        const c = child;
        if (!c) return;
        if (c.exitCode === null && c.signalCode === null) c.kill(signal);
        await exited;
        child = undefined;
      },
    };
    return m;
  };
  names.forEach((n, i) => members.push(makeMember(n, i)));

  const tlsFlags = () => (certs ? ['--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey] : []);
  const cluster: EtcdCluster = {
    members,
    get endpoints() {
      return members.map((m) => m.endpoint);
    },
    certs,
    rootPassword,
    admin(only?: Member) {
      return new Etcd3({
        hosts: only ? [only.endpoint] : members.filter((m) => m.running).map((m) => m.endpoint),
        ...(certs ? { credentials: { rootCertificate: readFileSync(certs.ca), certChain: readFileSync(certs.clientCert), privateKey: readFileSync(certs.clientKey) } } : {}),
        ...(rootPassword ? { auth: { username: 'root', password: rootPassword } } : {}),
        defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 5000 }),
      });
    },
    async leader() {
      // Each member says who leads; the one whose own id that is leads.
      for (const m of members.filter((x) => x.running)) {
        const one = cluster.admin(m);
        try {
          const s = await one.maintenance.status();
          if (s.header.member_id === s.leader) return m;
        } catch {
          // this member does not answer: ask the next
        } finally {
          one.close();
        }
      }
      throw new Error('no etcd member leads');
    },
    etcdctl(args) {
      const endpoints = members.filter((m) => m.running).map((m) => m.endpoint).join(',');
      return execFileSync('etcdctl', ['--endpoints', endpoints, ...tlsFlags(), ...(rootPassword ? ['--user', `root:${rootPassword}`] : []), ...args], {
        encoding: 'utf8',
        env: { ...process.env, ETCDCTL_API: '3' },
        timeout: 30_000,
      });
    },
    async close() {
      await Promise.all(members.map((m) => m.kill('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(members.map((m) => m.start()));
    if (rootPassword) {
      // Before auth is on, etcdctl needs no user; the root user and role must exist to enable it.
      execFileSync('etcdctl', ['--endpoints', cluster.endpoints.join(','), ...tlsFlags(), 'user', 'add', `root:${rootPassword}`], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000, stdio: 'ignore' });
      execFileSync('etcdctl', ['--endpoints', cluster.endpoints.join(','), ...tlsFlags(), 'auth', 'enable'], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000, stdio: 'ignore' });
    }
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

/**
 * The README's least-privilege setup for one cluster: a role with readwrite on the cluster's prefix, and a user
 * with that role. Returns the user's credentials.
 */
export function addClusterUser(etcd: EtcdCluster, cluster: string, user: string, password: string): { username: string; password: string } {
  const role = `libipc-${cluster}`;
  etcd.etcdctl(['role', 'add', role]);
  etcd.etcdctl(['role', 'grant-permission', role, 'readwrite', `libipc/cluster/${cluster}/`, '--prefix']);
  etcd.etcdctl(['user', 'add', `${user}:${password}`, '--interactive=false']);
  etcd.etcdctl(['user', 'grant-role', user, role]);
  return { username: user, password };
}
