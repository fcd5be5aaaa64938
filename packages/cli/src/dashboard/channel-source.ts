import { LibipcError, SharedMemory } from '@libipc/shm';
import { inspectChannel } from '@libipc/typed-channel';
import type { DashboardState } from './dashboard-state.js';
import type { ChannelView } from './model.js';
import type { ShmWatch } from './shm-watch.js';

/** The most channels listed: /dev/shm may hold thousands, the page shows the first ones by name and the count. */
const MAX_CHANNELS = 500;
/** Creating a channel touches several files (segment, doorbells): one read after the burst. */
const SETTLE_MS = 20;

/**
 * Channels in /dev/shm (libipc.chan.<name>), read with `inspectChannel` (no row taken, no bell rung) when
 * /dev/shm changes and on each gauge sample (messages move without file events). Publishes 'channels'.
 */
export class ChannelSource {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly state: DashboardState) {}

  start(shm: ShmWatch): void {
    shm.on('name', (file: string) => {
      if (file.startsWith('libipc.chan.') || file.startsWith('libipc.chanbell.')) this.schedule();
    });
    this.sample();
  }

  sample(): void {
    if (this.closed) return;
    const names = SharedMemory.list('chan')
      .filter((n) => /^[A-Za-z0-9._-]{1,63}$/.test(n))
      .sort();
    const channels = names.slice(0, MAX_CHANNELS).map(view);
    this.state.set('channels', { channels, total: names.length });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sample();
    }, SETTLE_MS);
    this.timer.unref();
  }
}

function view(name: string): ChannelView {
  try {
    const c = inspectChannel(name);
    const live = c.handles.filter((h) => h.alive);
    const receivers = live.filter((h) => h.role === 'receiver');
    return {
      name,
      type: c.type,
      onFull: c.onFull,
      capacity: c.capacity,
      slotSize: c.slotSize,
      messages: c.messages.toString(),
      senders: live.filter((h) => h.role === 'sender').length,
      receivers: receivers.length,
      activeReceivers: receivers.filter((h) => h.active).length,
      deadHandles: c.handles.length - live.length,
      fill: c.fill,
      lagged: c.missed.toString(),
      problem: null,
    };
  } catch (err) {
    return {
      name,
      type: '?',
      onFull: '?',
      capacity: 0,
      slotSize: 0,
      messages: '0',
      senders: 0,
      receivers: 0,
      activeReceivers: 0,
      deadHandles: 0,
      fill: null,
      lagged: null,
      problem: err instanceof LibipcError ? `${err.message} (${err.code})` : String(err),
    };
  }
}
