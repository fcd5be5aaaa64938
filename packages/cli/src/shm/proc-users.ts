import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

const PREFIX = '/dev/shm/libipc.';

/**
 * Which live processes map or hold open each libipc object in /dev/shm, from /proc/<pid>/maps and
 * /proc/<pid>/fd: the kernel's own view, so it also covers objects whose users are recorded nowhere.
 * Processes this user may not look into are skipped. Keyed by file name (libipc.<kind>.<name>).
 */
export function procUsers(): Map<string, Set<number>> {
  const users = new Map<string, Set<number>>();
  const add = (path: string, pid: number) => {
    const clean = path.replace(/ \(deleted\)$/, '');
    if (!clean.startsWith(PREFIX)) return;
    const object = clean.slice('/dev/shm/'.length);
    let set = users.get(object);
    if (!set) users.set(object, (set = new Set()));
    set.add(pid);
  };
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid === process.pid) continue; // our own look at a segment is not a use of it
    try {
      const maps = readFileSync(`/proc/${d}/maps`, 'utf8');
      for (const line of maps.split('\n')) {
        const at = line.indexOf(PREFIX);
        if (at >= 0) add(line.slice(at), pid);
      }
    } catch {
      continue; // gone, or not ours to read
    }
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${d}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        add(readlinkSync(`/proc/${d}/fd/${fd}`), pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  return users;
}
