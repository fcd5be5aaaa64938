// A host with two instances of service.mjs (next to it): elects a primary, kills it, sees the failover, stops.
//   node node_modules/@libipc/group/examples/host.mjs   (installed from npm)
//   node packages/group/examples/host.mjs                (in the repository, after building)
import { ServiceGroup } from '@libipc/group';
import { ServiceRegistry } from '@libipc/registry';

const registry = new ServiceRegistry('audio');
const group = new ServiceGroup(registry, {
  serviceName: 'audio_compute',                    // instances audio_compute.0, audio_compute.1
  executable: process.execPath,
  args: [new URL('service.mjs', import.meta.url).pathname], // each runs: node service.mjs <id>
  replicas: 2,
});
group.on('elected', (e) => console.log(`${e.primary} is primary (epoch ${e.epoch})`));
group.on('failover', (e) => console.log(`${e.previous} → ${e.primary} (epoch ${e.epoch}, ${e.detectedInMs.toFixed(1)} ms)`));
await group.start();
await group.forceFailover();                       // SIGKILL the primary: a standby takes over at once
await new Promise((resolve) => setTimeout(resolve, 500)); // the new primary says so (its next beat)
await group.stop();                                // every instance stopped, every entry gone
registry.close();
