// What a handle knows about the segment `libipc.chan.<name>` it joins (layout: docs/channel-layout.md): its kind,
// its rows' roles, where the receivers' doorbells live, and the check of a segment someone else created.
import { IncompatibleError, type SharedMemory } from '@libipc/shm';
import { unlinkSync } from 'node:fs';
import { type ChannelLayout, native } from './native.js';
import type { ChannelOptions, OnFull, Resolved } from './options.js';

export const KIND = 'chan';
export const TYPE_CHANNEL = 1;
export const TYPE_ROUTE = 2;
export const ROLE_SENDER = 1;
export const ROLE_RECEIVER = 2;
/** A row's flag while its handle waits for room (counted in sendSleepers; a reaper undoes a dead row's). */
export const SLEEP_SEND = 2;
// Structure changes (attach, close, reap) take the segment lock for microseconds; a stopped holder must not
// freeze us, so the synchronous wait is bounded.
export const LOCK_MS = 2000;

// Receivers' doorbells: FIFOs /dev/shm/libipc.chanbell.<name>.<row> (another kind, so never a segment's name).
export const BELL_DIR = '/dev/shm';
export const bellPrefix = (name: string) => `${BELL_DIR}/libipc.chanbell.${name}.`;

/**
 * Removes a doorbell FIFO without stat'ing it: rmSync would lstat it, leaving S_IFIFO in Node's shared stat
 * buffer, which Node 20's realpathSync reads for cached path components, so a later require() through a
 * symlink (pnpm's node_modules) would stop resolving.
 */
export function removeBell(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

// Handles still open when the process (or worker) exits normally are closed then, so that a program that
// forgets close() still leaves nothing behind; a killed process is reaped by the next user instead.
const openHandles = new Set<{ close(): void }>();
let exitHookInstalled = false;
export function trackOpen(handle: { close(): void }): void {
  openHandles.add(handle);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const h of [...openHandles]) {
      try {
        h.close();
      } catch {
        // exiting anyway: what could not be closed is reaped by the next user
      }
    }
  });
}
export function untrackOpen(handle: { close(): void }): void {
  openHandles.delete(handle);
}

/** Checks a joined segment: a valid control block, the same class, and no explicit option that differs. */
export function checkSegment(
  mem: SharedMemory,
  view: DataView,
  layout: ChannelLayout,
  type: number,
  name: string,
  opts: Partial<ChannelOptions>,
): Omit<Resolved, 'mode' | 'spinUs'> {
  if (!native().valid(mem.buffer)) {
    throw new IncompatibleError(
      `segment libipc.${KIND}.${name} is not a valid channel (corrupt control block); Channel.clearStorage('${name}') removes it`,
    );
  }
  const existing = {
    type: view.getUint32(layout.type, true),
    onFull: (view.getUint32(layout.onFull, true) === 1 ? 'lag' : 'wait') as OnFull,
    capacity: view.getUint32(layout.capacity, true),
    slotSize: view.getUint32(layout.slotSize, true),
    maxMessageSize: view.getUint32(layout.maxMessage, true),
  };
  const cls = (t: number) => (t === TYPE_ROUTE ? 'Route' : 'Channel');
  if (existing.type !== type) {
    throw new IncompatibleError(`libipc.${KIND}.${name} is a ${cls(existing.type)}, not a ${cls(type)}; use the same class on both sides`);
  }
  for (const key of ['onFull', 'capacity', 'slotSize', 'maxMessageSize'] as const) {
    if (opts[key] !== undefined && opts[key] !== existing[key]) {
      throw new IncompatibleError(
        `${cls(type)} ${name} exists with ${key} ${String(existing[key])}, not ${String(opts[key])}; omit ${key} to join it as it is`,
      );
    }
  }
  return existing;
}
