// Waiting and waking: a receiver sleeps on its doorbell (a FIFO its event loop polls) after announcing the sleep
// in its row; a sender with no room sleeps on the read-progress word, watching the slowest receiver's exit.
import { isAlive, TimeoutError, wait, watchExit } from '@libipc/shm';
import type { Endpoint } from './core.js';
import { reap } from './reap.js';
import { bellPrefix, removeBell, SLEEP_SEND } from './segment.js';

/** A sleeping receiver re-checks the ring at least this often (and waitForRecv its count). */
export const WAKE_CHECK_MS = 1000;
// A sender's first wait for room is this short and watches nobody's exit: most end within microseconds.
const FIRST_WAIT_MS = 20;

/** Takes until a message comes, the deadline passes or the handle closes, sleeping on the doorbell between looks. */
export async function recvLoop<T>(e: Endpoint, deadline: number, spin: boolean, take: (spinUs: number) => T | undefined): Promise<T | undefined> {
  for (let first = true; ; first = false) {
    if (e.closed) return undefined;
    // The caller has just looked (first and not spinning): the check after arming below covers a new message.
    const msg = first && !spin ? undefined : take(first ? e.spinUs : 0);
    if (msg !== undefined) return msg;
    const left = deadline - performance.now();
    if (left <= 0) return undefined;
    // Announce the sleep before the last check, so a sender either sees us or we see its message.
    armBell(e);
    try {
      if (e.core.pending()) continue;
      // The slice bounds a lost ring (a sender that could not open our FIFO): we re-check at least this often.
      if ((await ring(e, Math.min(left, WAKE_CHECK_MS))) === 'closed') return undefined;
    } finally {
      disarmBell(e);
    }
  }
}

/** Sleeps until a sender rings this receiver's doorbell (the event loop polls it: no helper thread). */
function ring(e: Endpoint, timeoutMs: number): Promise<'ok' | 'timed-out' | 'closed'> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const settle = (outcome: 'ok' | 'timed-out' | 'closed') => {
      if (e.bellWaiting !== settle) return;
      e.bellWaiting = undefined;
      if (timer === e.sliceTimer) timer?.unref();
      else if (timer) clearTimeout(timer);
      if (outcome !== 'ok') e.bell?.disarm();
      resolve(outcome);
    };
    e.bellWaiting = settle;
    e.bell!.arm(() => settle('ok'));
    if (timeoutMs === WAKE_CHECK_MS) {
      // The usual slice has one timer per handle, re-armed for each sleep rather than made and cleared (a
      // measurable part of a sleeping receive); unref'd between sleeps, and a late firing finds no sleeper.
      timer = e.sliceTimer ??= setTimeout(() => e.bellWaiting?.('timed-out'), WAKE_CHECK_MS);
      timer.refresh().ref();
    } else if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(() => settle('timed-out'), timeoutMs);
    }
  });
}

/** Ends a pending sleep ('closed') and removes this receiver's doorbell. */
export function closeBell(e: Endpoint): void {
  e.bellWaiting?.('closed');
  if (e.sliceTimer) clearTimeout(e.sliceTimer);
  e.bell!.close();
  e.bell = undefined;
  removeBell(`${bellPrefix(e.name)}${e.row}`);
}

/** Arms this receiver's doorbell: the next sender to publish disarms and rings it (once per sleep). */
function armBell(e: Endpoint): void {
  const layout = e.layout;
  Atomics.store(e.words, (layout.receivers + e.row * layout.receiverRow + layout.receiverArmed) / 4, 1);
  Atomics.add(e.words, layout.recvSleepers / 4, 1);
}

/** Disarms it unless a sender already did; exactly one of us uncounts it. */
export function disarmBell(e: Endpoint): void {
  if (e.mem.isClosed) return;
  const layout = e.layout;
  if (Atomics.exchange(e.words, (layout.receivers + e.row * layout.receiverRow + layout.receiverArmed) / 4, 0) === 1) {
    Atomics.sub(e.words, layout.recvSleepers / 4, 1);
  }
}

/** Sleeps until the slowest receiver makes room, dies, or the deadline passes (ERR_LIBIPC_TIMEOUT). */
export async function waitForRoom(e: Endpoint, need: number, deadline: number, timeout: number, stalledSince: number): Promise<void> {
  const watch = performance.now() - stalledSince >= FIRST_WAIT_MS;
  const layout = e.layout;
  const row = e.core.slowest();
  const who = row >= 0 ? e.table.identity(row) : undefined;
  if (row >= 0 && (!who || !isAlive(who.pid, who.startTime))) {
    reap(e);
    return;
  }
  // Wait for a batch of room (a quarter of the ring, or what the message needs), not for every freed slot.
  const want = Math.min(e.capacity, Math.max(need, Math.ceil(e.capacity / 4)));
  e.core.setRoomTarget(want);
  setSleeping(e, SLEEP_SEND, true);
  try {
    const observed = Atomics.load(e.words, layout.readProgress / 4);
    if (e.core.freeSlots(want) >= want) return;
    if (e.core.freeSlots(need) >= need && performance.now() - stalledSince >= FIRST_WAIT_MS) return;
    const left = deadline - performance.now();
    if (left <= 0) {
      if (e.core.freeSlots(need) >= need) return;
      throw new TimeoutError(
        `${e.what()} ${e.name} is full: the slowest receiver (pid ${who?.pid ?? '?'}) made no room within ${timeout} ms; ` +
          "it may be stopped or slow. Retry, raise timeoutMs, or use onFull: 'lag'",
      );
    }
    if (!watch) {
      // Most waits end within microseconds (an active receiver): only a longer one watches for a death.
      await wait(e.mem, layout.readProgress, observed, Math.min(left, FIRST_WAIT_MS), { spinUs: e.spinUs });
      return;
    }
    const stop = new AbortController();
    const exited = who ? watchExit(who.pid, who.startTime, { signal: stop.signal, ref: false }).catch(() => undefined) : undefined;
    try {
      // Short slices: a receiver that stops between `need` and `want` free slots does not wake us.
      const woke = wait(e.mem, layout.readProgress, observed, Math.min(left, FIRST_WAIT_MS));
      await (exited ? Promise.race([woke, exited]) : woke);
    } finally {
      stop.abort();
    }
  } finally {
    setSleeping(e, SLEEP_SEND, false);
  }
}

/** Marks this row as waiting for room (or not) and keeps sendSleepers; a reaper undoes a dead row's. */
export function setSleeping(e: Endpoint, which: number, on: boolean): void {
  if (e.mem.isClosed) return;
  const layout = e.layout;
  const flags = (layout.receivers + e.row * layout.receiverRow + layout.receiverFlags) / 4;
  for (const bit of [SLEEP_SEND]) {
    if (!(which & bit) || ((e.sleeping & bit) !== 0) === on) continue;
    const counter = layout.sendSleepers / 4;
    if (on) {
      e.sleeping |= bit;
      Atomics.or(e.words, flags, bit);
      Atomics.add(e.words, counter, 1);
    } else {
      e.sleeping &= ~bit;
      Atomics.sub(e.words, counter, 1);
      Atomics.and(e.words, flags, ~bit);
    }
  }
}
