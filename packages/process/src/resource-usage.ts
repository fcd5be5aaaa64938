import { readFileSync } from 'node:fs';

// Clock ticks per second of /proc/<pid>/stat's CPU times: 100 on every Linux configuration Node supports.
const CLOCK_TICKS = 100;

/** One reading of a process's resources, from /proc. */
export interface UsageSample {
  pid: number;
  /** CPU time used so far (user + system), in ms. */
  cpuMs: number;
  /** Resident memory now, in bytes. */
  rssBytes: number;
  /** When the reading was taken (performance.now()). */
  at: number;
}

/** Reads a process's CPU time and resident memory; undefined when it is gone (or a zombie: no memory left). */
export function sampleUsage(pid: number): UsageSample | undefined {
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (f[0] === 'Z') return undefined;
  const ticks = Number(f[11]) + Number(f[12]); // utime + stime (fields 14 and 15)
  // VmRSS is in kB whatever the page size (arm64 kernels may use 64 KiB pages).
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return { pid, cpuMs: (ticks * 1000) / CLOCK_TICKS, rssBytes: rss ? Number(rss[1]) * 1024 : 0, at: performance.now() };
}

/**
 * CPU use between two readings of the same process, in percent of one core (as `top` and `pm2 ls` show it:
 * 200 = two cores busy). undefined when the readings are of different processes or no time passed.
 */
export function cpuPercent(before: UsageSample | undefined, after: UsageSample | undefined): number | undefined {
  if (!before || !after || before.pid !== after.pid || after.at <= before.at || after.cpuMs < before.cpuMs) return undefined;
  return (100 * (after.cpuMs - before.cpuMs)) / (after.at - before.at);
}
