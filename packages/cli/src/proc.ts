import { readFileSync } from 'node:fs';

// Clock ticks per second of /proc/<pid>/stat's start time: 100 on every Linux configuration Node supports.
const CLOCK_TICKS = 100;
let bootMs: number | undefined;

/** When the machine booted (ms since the epoch), from /proc/stat's btime. */
function bootTimeMs(): number {
  if (bootMs === undefined) {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    bootMs = m ? Number(m[1]) * 1000 : 0;
  }
  return bootMs;
}

/** When a process with this start time (clock ticks since boot) started, in ms since the epoch. */
export function startedAtMs(startTime: bigint): number {
  return bootTimeMs() + Number(startTime) * (1000 / CLOCK_TICKS);
}
