/** How a child ended, or that it had not ended when a bounded wait ran out. */
export interface ExitStatus {
  reason: 'exited' | 'signaled' | 'timeout';
  exited: boolean;
  exitCode: number | null;
  signaled: boolean;
  signal: NodeJS.Signals | null;
}

export function exitStatus(code: number | null, signal: NodeJS.Signals | null): ExitStatus {
  return signal !== null
    ? { reason: 'signaled', exited: false, exitCode: null, signaled: true, signal }
    : { reason: 'exited', exited: true, exitCode: code, signaled: false, signal: null };
}

export const TIMED_OUT: Readonly<ExitStatus> = Object.freeze({
  reason: 'timeout',
  exited: false,
  exitCode: null,
  signaled: false,
  signal: null,
});

/** "exit code 1" / "signal SIGKILL" / "still running". */
export function describeExit(st: ExitStatus): string {
  if (st.reason === 'signaled') return `signal ${st.signal}`;
  if (st.reason === 'exited') return `exit code ${st.exitCode}`;
  return 'still running';
}
