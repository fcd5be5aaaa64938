import { lstatSync } from 'node:fs';
import { cleanObjects, why } from '../shm/clean.js';
import { collectObjects, type ShmObject } from '../shm/objects.js';

/**
 * How long an abandoned object is left alone by the daemon's automatic sweep: one whose last user died a moment
 * ago may be in the middle of a hand-over (written by a process that exits, about to be opened by the next), and a
 * tool or test looking at it must not see it vanish under its eyes. `libipc shm clean`, asked for, does not wait.
 */
export const SWEEP_MIN_AGE_MS = 60_000;

/** Not changed for `minAgeMs` (its mtime; a vanished object is not old). */
export function untouchedFor(x: ShmObject, minAgeMs: number, now = Date.now()): boolean {
  try {
    return now - lstatSync(`/dev/shm/${x.object}`).mtimeMs >= minAgeMs;
  } catch {
    return false;
  }
}

/**
 * What crashes leave: this user's libipc objects in /dev/shm whose every user is dead and that nothing changed for
 * SWEEP_MIN_AGE_MS, removed exactly as `libipc shm clean` removes them. Returns one line per object removed or
 * kept, for the daemon's log.
 */
export function sweepShm(uid = process.getuid?.(), minAgeMs = SWEEP_MIN_AGE_MS): string[] {
  const old = collectObjects().filter((x) => untouchedFor(x, minAgeMs));
  return cleanObjects(old, { uid }).map((st) =>
    st.action === 'kept' ? `sweep: kept ${st.object.object}: ${st.why}` : `sweep: ${st.action} ${st.object.object} (${why(st.object)})`,
  );
}
