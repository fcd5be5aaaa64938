// Watching a domain: the change stream of watch(), waitFor() and waitForDeath(). They sleep on the change
// counter (a futex word) and on death leases; nothing polls.
import { ClosedError, Lease, parseOptions, TimeoutError, validateTimeout, wait, wake, watchExit } from '@libipc/shm';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Domain } from './domain.js';
import type { RegistryChange, ServiceEntry } from './entry.js';
import { type LeasedSlot, LeaseWatchSet } from './lease-watch.js';
import { WAIT_FOR_DEATH_OPTIONS, WAIT_FOR_OPTIONS, type WaitForDeathOptions, type WaitForOptions } from './options.js';
import type { ChangeFeed } from './watch.js';

/** Every change after `feed`'s position, as it happens, until close() or `signal` aborts. */
export async function* changes(d: Domain, feed: ChangeFeed, signal: AbortSignal | undefined): AsyncGenerator<RegistryChange> {
  // Leases of the live entries are watched too: a death is published ('removed-dead') the moment its lease breaks.
  const leases = new LeaseWatchSet(d.mem);
  try {
    while (!d.closed && !signal?.aborted) {
      let batch: RegistryChange[];
      let leased: LeasedSlot[];
      try {
        [batch, leased] = d.locked((t) => {
          const scan = t.leaseScan();
          // A holder that died before we started watching its lease: publish its death now. (One that dies after
          // the scan was seen held: its watch sees the break.)
          if (scan.broken) d.collectDead(t);
          return [feed.take(t.eventsSince(feed.position)), scan.held] as const;
        });
      } catch (err) {
        if (d.closed) return;
        if (!(err instanceof TimeoutError)) throw err;
        // A stopped process holds the lock: try again later rather than end the stream.
        await sleep(d.lockTimeoutMs, undefined, { signal }).catch(() => undefined);
        continue;
      }
      for (const change of batch) {
        if (d.closed || signal?.aborted) return;
        yield change;
      }
      if (batch.length > 0) continue;
      leases.sync(leased);
      const woke = await Promise.race([waitChange(d, feed.position, Infinity, signal), leases.broken().then(() => 'lease' as const)]);
      if (woke === 'closed') return;
      if (woke === 'lease' && !d.closed) {
        try {
          d.locked((t) => d.collectDead(t)); // writes the 'removed-dead' events every watcher reads
        } catch (err) {
          if (!(err instanceof TimeoutError)) throw err;
        }
      }
    }
  } finally {
    leases.close();
  }
}

/** waitFor(): `find` looks the name up (removing a dead entry on the way). */
export async function waitFor(
  d: Domain,
  name: string,
  opts: WaitForOptions,
  find: (name: string) => ServiceEntry | undefined,
): Promise<ServiceEntry | undefined> {
  const o = parseOptions(opts, WAIT_FOR_OPTIONS, 'waitFor options');
  const timeout = validateTimeout(o.timeoutMs);
  const signal = o.signal;
  const deadline = performance.now() + timeout;
  for (;;) {
    signal?.throwIfAborted();
    d.assertOpen();
    const seen = d.table.seq();
    const entry = find(name);
    if (entry) return entry;
    const left = deadline - performance.now();
    if (left <= 0) return undefined;
    if ((await waitChange(d, seen, left, signal)) === 'closed') {
      throw new ClosedError(`registry '${d.name}' was closed while waiting for '${name}'`);
    }
  }
}

/** waitForDeath() of an entry already checked: its lease's break or its process's exit, whichever comes first. */
export async function waitForDeath(d: Domain, e: ServiceEntry, opts: WaitForDeathOptions): Promise<'owner-died' | 'exited'> {
  const o = parseOptions(opts, WAIT_FOR_DEATH_OPTIONS, 'waitForDeath options');
  const leaseAt = d.locked((t) => {
    const slot = t.slotOf(e);
    return slot >= 0 && t.leaseState(slot) !== 'free' ? t.leaseOffset(slot) : undefined;
  });
  const stop = new AbortController();
  const onAbort = () => stop.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    o.timeoutMs === undefined || o.timeoutMs === Infinity
      ? undefined
      : setTimeout(() => stop.abort(new TimeoutError(`'${e.name}' (pid ${e.pid}) was still alive after ${o.timeoutMs} ms`)), o.timeoutMs);
  const ref = o.ref ?? true;
  try {
    const exited = watchExit(e.pid, e.startTime, { signal: stop.signal, ref }).then(() => 'exited' as const);
    if (leaseAt === undefined) return await exited;
    const holder = d.mem.handle.leaseHolder(leaseAt);
    const broken = Lease.watch(d.mem, leaseAt, { holder: { pid: holder[0], tid: holder[1] }, signal: stop.signal, ref: false }).then(
      // Released (unregistered while alive): only the process's exit tells now.
      (outcome) => (outcome === 'owner-died' ? ('owner-died' as const) : exited),
    );
    return await Promise.race([broken, exited]);
  } catch (err) {
    if (stop.signal.aborted && stop.signal.reason !== undefined) throw stop.signal.reason;
    if (err instanceof ClosedError || d.closed) throw new ClosedError(`registry '${d.name}' was closed while waiting for '${e.name}' to die`);
    throw err;
  } finally {
    if (timer) clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    stop.abort();
  }
}

/** Sleeps until the change counter moves past `seen` (or timeout, abort, close) without polling. */
async function waitChange(
  d: Domain,
  seen: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<'changed' | 'timed-out' | 'aborted' | 'closed'> {
  if (d.closed) return 'closed';
  if (signal?.aborted) return 'aborted';
  const table = d.table;
  const mem = d.mem;
  let settled = false;
  // A wake that slips in before the waiter thread sleeps is lost: repeat until the wait has returned.
  const onAbort = () => {
    if (settled || mem.isClosed) return;
    wake(mem, table.seqOffset);
    setTimeout(onAbort, 5);
  };
  table.addWaiter(1);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const outcome = await wait(mem, table.seqOffset, seen, timeoutMs);
    if (signal?.aborted) return 'aborted';
    return outcome === 'timed-out' ? 'timed-out' : 'changed';
  } catch (err) {
    if (err instanceof ClosedError) return 'closed';
    throw err;
  } finally {
    settled = true;
    signal?.removeEventListener('abort', onAbort);
    if (!mem.isClosed) table.addWaiter(-1);
  }
}
