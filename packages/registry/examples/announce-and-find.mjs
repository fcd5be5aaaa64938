// Two processes on one registry: a service announces itself and heartbeats; a client waits for it,
// watches the domain, and sees the service removed when it is killed.
//   node node_modules/@libipc/registry/examples/announce-and-find.mjs   (installed from npm)
//   node packages/registry/examples/announce-and-find.mjs                (in the repository, after building)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ServiceRegistry } from '@libipc/registry';

const domain = `example-${process.pid}`;

if (process.argv[2] === 'service') {
  const registry = new ServiceRegistry(process.argv[3]);
  registry.register('audio_compute.0', 'audio_compute_ctrl_0', 'audio_compute_reply_0', { meta: 'rate=48000' });
  setInterval(() => registry.heartbeat('audio_compute.0'), 100);
} else {
  const registry = new ServiceRegistry(domain);
  const changes = registry.watch(); // every change from now on, from every process

  const service = spawn(process.execPath, [fileURLToPath(import.meta.url), 'service', domain], { stdio: 'inherit' });
  const entry = await registry.waitFor('audio_compute.0', { timeoutMs: 5000 });
  console.log(`found ${entry.name} (pid ${entry.pid}): control ${entry.controlChannel}, meta ${entry.meta}`);
  console.log('group members:', registry.findAll('audio_compute.').map((e) => e.name));

  const epoch = registry.claimPrimary('audio_compute', entry.name, registry.groupState('audio_compute').epoch);
  console.log(`primary of audio_compute: ${registry.groupState('audio_compute').primary}, epoch ${epoch}`);

  service.kill('SIGKILL'); // no unregister: its entry belongs to a dead process now
  await once(service, 'exit');
  // Gone already (its death was noticed) or removed by this find(): either way undefined, and a change.
  console.log('service killed; find() says', registry.find('audio_compute.0'));

  for await (const change of changes) {
    console.log(`change: ${change.type} ${change.entry.name}`);
    if (change.type !== 'registered') break;
  }
  registry.close(); // last user, no live entries: the segment is removed from /dev/shm
}
