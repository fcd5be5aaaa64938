// The instance table the host prints before and after the crash.
import type { ManagedInstance } from '@libipc/group';

export interface InstanceRow {
  name: string;
  role: string;
  pid: number | undefined;
  epoch: number;
}

export function instanceRows(instances: readonly ManagedInstance[]): InstanceRow[] {
  return instances.map((i) => ({ name: i.name, role: i.role, pid: i.pid, epoch: i.epoch }));
}

/** Aligned columns, one line per instance, under a header. */
export function formatTable(rows: readonly InstanceRow[]): string[] {
  const cells = [['INSTANCE', 'ROLE', 'PID', 'PRIMARY IN EPOCH'], ...rows.map((r) => [r.name, r.role, String(r.pid ?? '-'), r.epoch ? String(r.epoch) : '-'])];
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)));
  return cells.map((row) => `  ${row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')}`.trimEnd());
}
