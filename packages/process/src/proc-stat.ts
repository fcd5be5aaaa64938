import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat this package needs. */
export interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
}

/** undefined when there is no such process. */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]) };
}

/** True when `pid` is `ancestor` or one of its descendants (walks the ppid chain). */
export function isSelfOrDescendant(pid: number, ancestor: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 4096; hops++) {
    if (p === ancestor) return true;
    const s = procStat(p);
    if (!s) return false;
    p = s.ppid;
  }
  return false;
}

/** Live (non-zombie) processes whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (d.charCodeAt(0) > 57) continue;
    const s = procStat(Number(d));
    if (s && s.pgrp === pgid && s.state !== 'Z' && s.state !== 'X') out.push(Number(d));
  }
  return out;
}
