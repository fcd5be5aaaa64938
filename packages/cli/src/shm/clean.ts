import { lstatSync, unlinkSync } from 'node:fs';
import { inspectRegistry } from '@libipc/registry';
import { LibipcError, SegmentHeader, SharedMemory, TimeoutError } from '@libipc/shm';
import { inspectChannel } from '@libipc/typed-channel';
import type { ShmObject } from './objects.js';

const LOCK_MS = 1000;

export type CleanOutcome = { object: string; removed: true } | { object: string; removed: false; why: string };

/**
 * Removes one object that collectObjects judged removable. A headed segment is retired the way its last
 * user would: under its lock, after checking again that no live process is attached, state 'retired' first
 * (so a process that is opening it right now creates a new one instead of joining a removed one), then the
 * name, only while it still is the same object. Other objects are unlinked only while they are the same inode.
 */
export function removeObject(o: ShmObject): CleanOutcome {
  try {
    if (o.type === 'segment' && o.headed) return retireSegment(o);
    return unlinkSame(o);
  } catch (err) {
    if (err instanceof LibipcError) return { object: o.object, removed: false, why: err.message };
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return { object: o.object, removed: false, why: 'already gone' };
    return { object: o.object, removed: false, why: e.message };
  }
}

function retireSegment(o: ShmObject): CleanOutcome {
  const mem = SharedMemory.open(o.name, { kind: o.kind });
  try {
    if (mem.inode !== o.inode) return { object: o.object, removed: false, why: 'replaced by a new object meanwhile' };
    const header = new SegmentHeader(mem);
    try {
      header.lock.lockSync(LOCK_MS); // a dead holder's lock is taken over: we retire it anyway
    } catch (err) {
      if (err instanceof TimeoutError) return { object: o.object, removed: false, why: 'its lock is held by a live (stopped?) process' };
      throw err;
    }
    try {
      // Joiners and registrations happen under this lock: checked here, nobody can slip in before the retire.
      const live = liveUsers(o);
      if (live.length > 0) return { object: o.object, removed: false, why: `pid ${live.join(', ')} attached meanwhile` };
      header.retire();
    } finally {
      header.lock.unlock();
    }
    return { object: o.object, removed: true };
  } finally {
    mem.close();
  }
}

function liveUsers(o: ShmObject): number[] {
  if (o.kind === 'registry') {
    const snap = inspectRegistry(o.name);
    return [...snap.users.filter((u) => u.alive).map((u) => u.pid), ...snap.entries.filter((e) => e.alive).map((e) => e.pid)];
  }
  if (o.kind === 'chan') return inspectChannel(o.name).handles.filter((h) => h.alive).map((h) => h.pid);
  return [];
}

function unlinkSame(o: ShmObject): CleanOutcome {
  const path = `/dev/shm/${o.object}`;
  // bigint stat: a FIFO's plain lstat would leave S_IFIFO in the stat buffer Node 20's realpath cache reads.
  const st = lstatSync(path, { bigint: true });
  if (st.ino !== o.inode) return { object: o.object, removed: false, why: 'replaced by a new object meanwhile' };
  unlinkSync(path);
  return { object: o.object, removed: true };
}

export type CleanStep = { object: ShmObject; action: 'removed' | 'would remove' } | { object: ShmObject; action: 'kept'; why: string };

/**
 * What `libipc shm clean` does, for it and for the daemon's sweep: every removable object of `objects` (only
 * those of `uid` when given) is removed, segments first (a channel's doorbells go only once the channel is gone).
 */
export function cleanObjects(objects: readonly ShmObject[], opts: { dryRun?: boolean; uid?: number } = {}): CleanStep[] {
  const candidates = objects.filter((x) => x.removable && (opts.uid === undefined || x.uid === opts.uid));
  candidates.sort((a, b) => Number(a.type === 'fifo') - Number(b.type === 'fifo'));
  const failedChannels = new Set<string>();
  const steps: CleanStep[] = [];
  for (const x of candidates) {
    if (opts.dryRun) {
      steps.push({ object: x, action: 'would remove' });
      continue;
    }
    if (x.channel !== undefined && failedChannels.has(x.channel)) continue;
    const r = removeObject(x);
    if (r.removed) steps.push({ object: x, action: 'removed' });
    else {
      if (x.kind === 'chan') failedChannels.add(x.name);
      steps.push({ object: x, action: 'kept', why: r.why });
    }
  }
  return steps;
}

/** Why an object is judged abandoned, in a few words. */
export function why(x: ShmObject): string {
  if (x.users.length === 0) return x.kind === 'chanbell' ? 'doorbell of a channel nobody uses' : 'no user';
  const dead = x.users.filter((u) => !u.alive).length;
  return `${dead} dead user${dead === 1 ? '' : 's'}`;
}
