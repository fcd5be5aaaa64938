import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';

/**
 * One inotify watch on /dev/shm for every source: 'name' (file name) whenever an object there is created,
 * removed or renamed. Writes into a mapped segment make no event; those are sampled as gauges.
 */
export class ShmWatch extends EventEmitter {
  private watcher: FSWatcher | undefined;

  constructor(private readonly dir = '/dev/shm') {
    super();
    this.setMaxListeners(0);
  }

  start(): void {
    if (this.watcher) return;
    this.watcher = watch(this.dir, { persistent: false }, (_event, file) => {
      if (file) this.emit('name', String(file));
    });
    this.watcher.on('error', (err) => this.emit('problem', err));
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.removeAllListeners();
  }
}
