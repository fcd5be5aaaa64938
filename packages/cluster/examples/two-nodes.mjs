// Two cluster nodes in one process (on two machines they would be two processes with the same code), on the
// etcd at $ETCD_ENDPOINTS (default http://127.0.0.1:2379; TLS and auth from ETCD_CACERT, ETCD_CERT, ETCD_KEY,
// ETCD_USERNAME, ETCD_PASSWORD):
//   node node_modules/@libipc/cluster/examples/two-nodes.mjs   (installed from npm)
//   node packages/cluster/examples/two-nodes.mjs                (in the repository, after building)
import { once } from 'node:events';
import { ClusterNode, etcdOptionsFromEnv } from '@libipc/cluster';

const etcd = etcdOptionsFromEnv(); // { endpoints, tls?, auth? } from ETCD_ENDPOINTS, ETCD_CACERT, … (see the README)
const cluster = `demo-${process.pid}`;

// A launcher starts the daemons assigned to its node. Here a daemon is a timer; a real one spawns a process.
function launcher(node) {
  const running = new Map();
  return {
    async spawn({ processName, args = [] }) {
      running.set(processName, setInterval(() => {}, 1000));
      console.log(`${node}: started ${processName} ${JSON.stringify(args)}`);
    },
    async stop({ processName }) {
      clearInterval(running.get(processName));
      running.delete(processName);
      console.log(`${node}: stopped ${processName}`);
    },
    // The daemons that should always run somewhere in the cluster (asked on the leader only).
    async *recover() {
      yield { launcher: 'worker', processName: 'indexer' };
    },
  };
}

const a = await ClusterNode.join({ ...etcd, cluster, nodeName: 'node-a', leaseTtlS: 2 });
a.registerLauncher('worker', launcher('node-a'));
const recovered = once(a, 'daemon-recovered'); // node-a, the first node, leads: it starts what recover() lists
const b = await ClusterNode.join({ ...etcd, cluster, nodeName: 'node-b', leaseTtlS: 2 });
b.registerLauncher('worker', launcher('node-b'));

const [indexer] = await recovered;
console.log(`leader: ${a.isLeader ? 'node-a' : 'node-b'}; indexer runs on ${indexer.node}`);

// Start a daemon where placement puts it (here, or by a request the chosen node watches).
const { node } = await b.spawnRegister('worker', 'thumbnailer', [256]);
console.log(`thumbnailer placed on ${node}`);

// Register a process this node runs; every node's address book learns it (eventually: poll the cache).
await b.register('api');
while (a.locate('api') !== 'node-b') await new Promise((r) => setTimeout(r, 10));
const book = a.addressBook();
console.log(`nodes: ${book.getAvailableNodes().join(', ')}; on node-b: ${book.getProcessList('node-b').join(', ')}`);

// Leaving stops this node's daemons and revokes its lease: its registrations go at once, and the leader
// re-places what recover() lists. Nothing stays in etcd.
await b.leave();
await a.leave();
