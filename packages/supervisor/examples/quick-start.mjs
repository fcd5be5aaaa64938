// The README's example: three services in a chain, a crash, the cascade, a clean shutdown.
//   node node_modules/@libipc/supervisor/examples/quick-start.mjs   (installed from npm)
//   node packages/supervisor/examples/quick-start.mjs                (in the repository, after building)
import { Manager } from '@libipc/supervisor';

const m = new Manager();
m.on('restart', (e) => console.log(`restart ${e.name} (${e.reason})`));
await m.start({ name: 'db', command: 'sleep', args: ['60'] });
await m.start({ name: 'api', command: 'sleep', args: ['60'], dependsOn: ['db'] });
await m.startN({ name: 'worker', command: 'sleep', args: ['60'], instances: 2, dependsOn: ['api'] });
console.table(m.statusAll().map(({ name, state, pid, restarts }) => ({ name, state, pid, restarts })));
const back = new Promise((resolve) => m.on('ready', (e) => e.name === 'worker.1' && resolve(undefined)));
process.kill(m.status('db').pid, 'SIGKILL'); // db restarts, then api, then the workers
await back;
await m.shutdown(); // dependents first
