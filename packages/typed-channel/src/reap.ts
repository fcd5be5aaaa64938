// The route's one sender seat, and reaping: freeing the rows of handles whose process died without closing.
import { ExistsError, isAlive, selfIdentity, TimeoutError } from '@libipc/shm';
import type { Endpoint } from './core.js';
import { native } from './native.js';
import { bellPrefix, LOCK_MS, removeBell, SLEEP_SEND, TYPE_ROUTE } from './segment.js';

// A dead receiver that is not the slowest is found at the latest this often by a sender.
const REAP_EVERY_MS = 500;

function routePid(e: Endpoint): number {
  return Atomics.load(e.words, e.layout.routePid / 4) >>> 0;
}

/** Takes the route's one sender seat; a seat of a dead process is taken over. Caller holds the segment lock. */
export function claimRoute(e: Endpoint, row: number): void {
  const layout = e.layout;
  const pid = routePid(e);
  if (pid !== 0) {
    const start = e.view.getBigUint64(layout.routeStart, true);
    if (isAlive(pid, start)) {
      throw new ExistsError(`route ${e.name} already has a live sender (pid ${pid}); a route has one sender at a time: close that one first`);
    }
  }
  const self = selfIdentity();
  e.view.setBigUint64(layout.routeStart, self.startTime, true);
  e.view.setUint32(layout.routeTag, row + 1, true);
  Atomics.store(e.words, layout.routePid / 4, self.pid);
}

/** Gives the route's sender seat back if this handle holds it. Caller holds the segment lock. */
export function releaseRoute(e: Endpoint): void {
  const layout = e.layout;
  if (e.type === TYPE_ROUTE && e.view.getUint32(layout.routeTag, true) === e.row + 1 && routePid(e) === process.pid) {
    Atomics.store(e.words, layout.routePid / 4, 0);
  }
}

/** A cheap liveness look at the rows every REAP_EVERY_MS; takes the lock only when someone died. */
export function maybeReap(e: Endpoint): void {
  if (++e.sendsSinceReapCheck < 64) return;
  e.sendsSinceReapCheck = 0;
  const now = performance.now();
  if (now - e.lastReap < REAP_EVERY_MS) return;
  e.lastReap = now;
  for (const row of e.table.used()) {
    if (!e.table.isLive(row)) {
      reap(e);
      return;
    }
  }
}

export function reap(e: Endpoint): void {
  try {
    e.header.lock.lockSync(LOCK_MS);
  } catch (err) {
    if (err instanceof TimeoutError) return; // a stopped lock holder: try again later
    throw err;
  }
  try {
    reapLocked(e);
  } finally {
    e.header.lock.unlock();
  }
}

/** Frees the rows of processes that died without closing (by identity, not kill(pid, 0)). Caller holds the lock. */
export function reapLocked(e: Endpoint): void {
  const layout = e.layout;
  const bin = native();
  let changed = false;
  for (const row of e.table.used()) {
    if (e.table.isLive(row)) continue;
    const rowBase = (layout.receivers + row * layout.receiverRow) / 4;
    if (Atomics.exchange(e.words, rowBase + layout.receiverArmed / 4, 0) === 1) Atomics.sub(e.words, layout.recvSleepers / 4, 1);
    if (Atomics.exchange(e.words, rowBase + layout.receiverFlags / 4, 0) & SLEEP_SEND) Atomics.sub(e.words, layout.sendSleepers / 4, 1);
    bin.deactivateRow(e.mem.buffer, row);
    removeBell(`${bellPrefix(e.name)}${row}`);
    if (e.type === TYPE_ROUTE && e.view.getUint32(layout.routeTag, true) === row + 1) {
      Atomics.store(e.words, layout.routePid / 4, 0);
    }
    e.table.remove(row);
    changed = true;
  }
  if (changed) e.bump(layout.membership);
}
