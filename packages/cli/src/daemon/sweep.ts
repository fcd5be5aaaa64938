import { cleanObjects, why } from '../shm/clean.js';
import { collectObjects } from '../shm/objects.js';

/**
 * What crashes leave: this user's libipc objects in /dev/shm whose every user is dead, removed exactly as
 * `libipc shm clean` removes them. Returns one line per object removed or kept, for the daemon's log.
 */
export function sweepShm(uid = process.getuid?.()): string[] {
  return cleanObjects(collectObjects(), { uid }).map((st) =>
    st.action === 'kept' ? `sweep: kept ${st.object.object}: ${st.why}` : `sweep: ${st.action} ${st.object.object} (${why(st.object)})`,
  );
}
