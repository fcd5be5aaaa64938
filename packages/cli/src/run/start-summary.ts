// What `libipc run` says once it has started the config, and whether the run goes on: pure, table-tested.

/** What the run knows of each unit once every start it asked for has settled. */
export interface StartedUnit {
  name: string;
  state: string;
  reason?: string;
}

export interface StartSummary {
  /** Every unit runs: the run stays up until Ctrl-C. Otherwise it stops what started and exits 1 (as docker compose up). */
  ok: boolean;
  message: string;
}

/** The summary line after the starts: counts only what really runs, names what does not and why. */
export function startSummary(units: readonly StartedUnit[], failures: ReadonlyMap<string, string>): StartSummary {
  const running = units.filter((u) => u.state === 'running');
  const down = units.filter((u) => u.state !== 'running');
  if (down.length === 0) {
    // A start that failed for a unit now running (its policy retried it) still counts as started, and is said.
    const retried = [...failures].map(([name, reason]) => `${name} (${reason})`);
    return { ok: true, message: `all ${units.length} service(s) started${retried.length ? `, after a failed first start: ${retried.join('; ')}` : ''}; Ctrl-C stops them` };
  }
  const why = (u: StartedUnit) => {
    // A unit held back says what it waits for; a start() of it rejects with its dependency's error instead.
    const reason = u.state === 'failed' ? (failures.get(u.name) ?? u.reason) : (u.reason ?? failures.get(u.name));
    return `${u.name} (${u.state}${reason ? `: ${reason}` : ''})`;
  };
  return { ok: false, message: `${running.length} of ${units.length} service(s) started; not running: ${down.map(why).join('; ')}` };
}
