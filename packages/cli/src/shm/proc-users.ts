import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

/**
 * Which live processes map or hold open each file in /dev/shm, from /proc/<pid>/maps and /proc/<pid>/fd: the
 * kernel's own view, so it also covers objects whose users are recorded nowhere. Keyed by inode, not by name:
 * a segment created atomically (O_TMPFILE, then linked under its name) shows in maps as `/dev/shm/#<inode>
 * (deleted)` for as long as it stays mapped, and a name-keyed look found no user of a live segment, so
 * `shm clean` and the daemon's sweep removed it. Processes this user may not look into are skipped.
 */
export function procUsers(): Map<bigint, Set<number>> {
  const users = new Map<bigint, Set<number>>();
  const add = (inode: bigint, pid: number) => {
    let set = users.get(inode);
    if (!set) users.set(inode, (set = new Set()));
    set.add(pid);
  };
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid === process.pid) continue; // our own look at a segment is not a use of it
    try {
      const maps = readFileSync(`/proc/${d}/maps`, 'utf8');
      for (const line of maps.split('\n')) {
        if (!line.includes(' /dev/shm/')) continue;
        // address perms offset dev inode path
        const inode = line.split(/\s+/, 6)[4];
        if (inode && inode !== '0') add(BigInt(inode), pid);
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
        if (!readlinkSync(`/proc/${d}/fd/${fd}`).startsWith('/dev/shm/')) continue;
        add(statSync(`/proc/${d}/fd/${fd}`, { bigint: true }).ino, pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  return users;
}
