import { readdirSync } from 'node:fs';
import { IdentityTable, IncompatibleError, isAliveIdentity, validateName, withSegment } from '@libipc/shm';
import { native } from './native.js';

// A read-only look at a channel for tools (`libipc shm ls`): it takes no row, no lock and rings no bell, so the
// channel's users cannot tell it was looked at.

const KIND = 'chan';
const BELL_DIR = '/dev/shm';
const ROLES = ['', 'sender', 'receiver'] as const;

export interface ChannelHandleInfo {
  /** Row in the identity and receiver tables (a receiver's doorbell is libipc.chanbell.<name>.<row>). */
  row: number;
  pid: number;
  startTime: bigint;
  role: 'sender' | 'receiver' | 'unknown';
  /** By identity (pid + start time). */
  alive: boolean;
  /** A receiver that counts for back-pressure. */
  active: boolean;
  /** A receiver's unread slots (write cursor - its cursor). */
  behind?: number;
  /** A receiver's messages missed in 'lag' mode since it joined. */
  missed?: bigint;
}

export interface ChannelSnapshot {
  name: string;
  type: 'channel' | 'route';
  onFull: 'wait' | 'lag';
  capacity: number;
  slotSize: number;
  maxMessageSize: number;
  /** Every row in use, dead processes' included until a user reaps them. */
  handles: ChannelHandleInfo[];
  /** Messages sent so far. */
  messages: bigint;
  /** How full the ring is for its slowest active receiver: 0 (all read) to 1 (full). */
  fill: number;
  /** Messages missed in 'lag' mode by the receivers attached now, in total. */
  missed: bigint;
  /** Doorbell FIFOs present for this channel (file names in /dev/shm). */
  bells: string[];
  state: string;
}

/** The doorbell FIFOs of channel `name` in /dev/shm (file names), whether or not its segment exists. */
export function channelBells(name: string): string[] {
  validateName(name, 'channel name');
  const prefix = `libipc.chanbell.${name}.`;
  return readdirSync(BELL_DIR)
    .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)))
    .sort();
}

/**
 * Reads channel (or route) `name` as it is now, without joining or changing it. ERR_LIBIPC_NOT_FOUND when it
 * does not exist; ERR_LIBIPC_INCOMPATIBLE for another layout version or a corrupt control block.
 */
export function inspectChannel(name: string): ChannelSnapshot {
  validateName(name, 'channel name');
  const bin = native();
  const layout = bin.layout;
  const snapshot = withSegment(KIND, name, (mem, header) => {
    if (header.layoutVersion !== layout.version) {
      throw new IncompatibleError(`channel ${name} has layout version ${header.layoutVersion}, this code reads ${layout.version}`);
    }
    if (mem.size < layout.ring || !bin.valid(mem.buffer)) throw new IncompatibleError(`channel ${name} has a corrupt control block`);
    const view = new DataView(mem.buffer, 0, layout.ring);
    const identities = new IdentityTable(mem, layout.identities, layout.maxHandles);
    const handles: ChannelHandleInfo[] = [];
    for (const row of identities.used()) {
      const id = identities.identity(row);
      if (!id) continue;
      const base = layout.receivers + row * layout.receiverRow;
      handles.push({
        row,
        pid: id.pid,
        startTime: id.startTime,
        role: ROLES[identities.tag(row)] || 'unknown',
        alive: isAliveIdentity(id.pid, id.startTime),
        active: view.getUint32(base, true) === 1, // the row's first word
        ...(identities.tag(row) === 2
          ? {
              behind: Math.max(0, Number(view.getBigUint64(layout.writeCursor, true) - view.getBigUint64(base + layout.receiverCursor, true))),
              missed: view.getBigUint64(base + layout.receiverMissed, true),
            }
          : {}),
      });
    }
    return {
      name,
      type: view.getUint32(layout.type, true) === 2 ? ('route' as const) : ('channel' as const),
      onFull: view.getUint32(layout.onFull, true) === 1 ? ('lag' as const) : ('wait' as const),
      capacity: view.getUint32(layout.capacity, true),
      slotSize: view.getUint32(layout.slotSize, true),
      maxMessageSize: view.getUint32(layout.maxMessage, true),
      handles,
      messages: view.getBigUint64(layout.nextMsg, true),
      fill: Math.min(1, Math.max(0, ...handles.filter((h) => h.active && h.alive).map((h) => h.behind ?? 0)) / view.getUint32(layout.capacity, true)),
      missed: handles.reduce((n, h) => n + (h.missed ?? 0n), 0n),
      state: header.state,
    };
  });
  return { ...snapshot, bells: channelBells(name) };
}
