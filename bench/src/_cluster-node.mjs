// A cluster node for bench/src/cluster.mjs: its launcher 'L' "starts" a daemon by printing
// `spawn <name> <epoch ms>`; recover() lists d0..d<N-1>.
// Usage: _cluster-node.mjs <endpoint[,endpoint…]> <cluster> <nodeName> <leaseTtlS> <daemons>
// (TLS and auth from ETCD_CACERT, ETCD_CERT, ETCD_KEY, ETCD_USERNAME, ETCD_PASSWORD)
import { ClusterNode, etcdOptionsFromEnv } from '@libipc/cluster';

const [endpoint, cluster, nodeName, ttl, count] = process.argv.slice(2);
const node = await ClusterNode.join({ ...etcdOptionsFromEnv({ ...process.env, ETCD_ENDPOINTS: endpoint }), cluster, nodeName, leaseTtlS: Number(ttl), recoveryIntervalMs: 60_000 });
node.registerLauncher('L', {
  async spawn(d) {
    process.stdout.write(`spawn ${d.processName} ${Date.now()}\n`);
  },
  async *recover() {
    for (let i = 0; i < Number(count); i++) yield { launcher: 'L', processName: `d${i}` };
  },
});
node.on('leader', () => process.stdout.write('leader\n'));
process.stdout.write(`joined ${node.isLeader ? 'leader' : 'follower'}\n`);
// The bench never closes our stdin: its end means the bench died, so go too.
process.stdin.on('end', () => process.exit(0)).resume();
