import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { it } from 'vitest';
import { addClusterUser, startEtcdCluster } from './etcd-cluster.js';

const show = (e: unknown) => { const x = e as Error & { code?: unknown; details?: unknown }; return `${x.constructor.name} code=${String(x.code)} msg=${x.message}`; };
it('exp', async () => {
  const t0 = Date.now();
  const etcd = await startEtcdCluster({ tls: true, auth: true });
  console.log('started in', Date.now() - t0);
  try {
    const c = etcd.certs!;
    addClusterUser(etcd, 'demo', 'alice', 'pw');
    const mk = (o: Record<string, unknown>) => new Etcd3({ hosts: etcd.endpoints, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 3000 }), ...o });
    const good = { rootCertificate: readFileSync(c.ca), certChain: readFileSync(c.clientCert), privateKey: readFileSync(c.clientKey) };
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['ok', { credentials: good, auth: { username: 'alice', password: 'pw' } }, 'libipc/cluster/demo/x'],
      ['perm', { credentials: good, auth: { username: 'alice', password: 'pw' } }, 'libipc/cluster/other/x'],
      ['wrongpw', { credentials: good, auth: { username: 'alice', password: 'bad' } }, 'libipc/cluster/demo/x'],
      ['noauth', { credentials: good }, 'libipc/cluster/demo/x'],
      ['badca', { credentials: { ...good, rootCertificate: readFileSync(c.otherCa) }, auth: { username: 'alice', password: 'pw' } }, 'libipc/cluster/demo/x'],
      ['badclient', { credentials: { ...good, certChain: readFileSync(c.otherCert), privateKey: readFileSync(c.otherKey) }, auth: { username: 'alice', password: 'pw' } }, 'libipc/cluster/demo/x'],
      ['noclientcert', { credentials: { rootCertificate: readFileSync(c.ca) }, auth: { username: 'alice', password: 'pw' } }, 'libipc/cluster/demo/x'],
      ['plain', { hosts: etcd.endpoints.map((e) => e.replace('https', 'http')), auth: { username: 'alice', password: 'pw' } }, 'libipc/cluster/demo/x'],
    ];
    for (const [name, o, key] of cases) {
      const cl = mk(o);
      const t = Date.now();
      try {
        await cl.put(key).value('v');
        const lease = cl.lease(2, { autoKeepAlive: false });
        const id = await lease.grant();
        const ttl = await cl.leaseClient.leaseTimeToLive({ ID: id });
        await cl.put(key).value('v').lease(id);
        await lease.revoke();
        console.log(name, 'OK', ttl.TTL, Date.now() - t);
      } catch (e) {
        console.log(name, show(e), Date.now() - t);
      } finally { cl.close(); }
    }
    const leader = await etcd.leader();
    console.log('leader', leader.name);
  } finally {
    await etcd.close();
  }
}, 120000);
