// Pure: how the last restart's trigger shows in the REASON column of `libipc ps`, `libipc run`'s table and the dashboard.

/** A service's last restart as stored in its history or status. */
export interface RestartInfo {
  trigger: string;
  reason: string;
}

/** "restart (memory): RSS 301 MiB above maxMemory 256 MiB for 3 s": the trigger, then its reason without the trigger's own prefix. */
export function restartNote(last: RestartInfo): string {
  const why = last.reason.startsWith(`${last.trigger}: `) ? last.reason.slice(last.trigger.length + 2) : last.reason;
  return `restart (${last.trigger}): ${why}`;
}

/** The REASON cell: while it runs (or starts) after a restart, what restarted it; otherwise why it is in its state. */
export function reasonText(state: string, reason: string | null | undefined, last: RestartInfo | null | undefined): string {
  if (last && (state === 'running' || state === 'starting')) return restartNote(last);
  return reason ?? '';
}
