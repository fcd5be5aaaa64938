// The instance table the host prints before and after the crash.
import { readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import type { ManagedInstance } from '@libipc/group';

export interface InstanceRow {
  name: string;
  role: string;
  pid: number | undefined;
  epoch: number;
  /** What the instance runs: 'node' (audio-service.js) or 'c++' (the audio-engine binary). */
  engine: string;
}

/** The instance's executable, from /proc: node or the C++ engine (a group may mix them). */
function engineOf(pid: number | undefined): string {
  if (pid === undefined) return '-';
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`)) === 'audio-engine' ? 'c++' : 'node';
  } catch {
    return '-'; // gone meanwhile
  }
}

export function instanceRows(instances: readonly ManagedInstance[]): InstanceRow[] {
  return instances.map((i) => ({ name: i.name, role: i.role, pid: i.pid, epoch: i.epoch, engine: engineOf(i.pid) }));
}

/** Aligned columns, one line per instance, under a header. */
export function formatTable(rows: readonly InstanceRow[]): string[] {
  const cells = [
    ['INSTANCE', 'ROLE', 'PID', 'PRIMARY IN EPOCH', 'ENGINE'],
    ...rows.map((r) => [r.name, r.role, String(r.pid ?? '-'), r.epoch ? String(r.epoch) : '-', r.engine]),
  ];
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)));
  return cells.map((row) => `  ${row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')}`.trimEnd());
}
