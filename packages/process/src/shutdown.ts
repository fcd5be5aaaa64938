import { constants as osConstants } from 'node:os';
import { describeValue, InvalidArgumentError, validateTimeout, watchExit } from '@libipc/shm';
import { type ExitStatus, TIMED_OUT } from './exit-status.js';
import { groupMembers } from './proc-stat.js';
import { type ProcessHandle, handleInternals } from './spawn.js';

export const DEFAULT_GRACE_MS = 3000;

function signalGroupOrChild(h: ProcessHandle, signal: NodeJS.Signals): boolean {
  const i = handleInternals(h);
  if (i.killTree) {
    // After the leader is gone the group id stays valid only while members remain; check before signalling.
    if (i.exitStatus !== undefined && groupMembers(h.pid).length === 0) return false;
    try {
      process.kill(-h.pid, signal);
      return true;
    } catch {
      return false;
    }
  }
  if (i.exitStatus !== undefined) return false;
  // ChildProcess.kill never signals a reaped pid, so a reused pid is never hit.
  return i.child.kill(signal);
}

/** Asks the child (its whole group with killTree) to exit: SIGTERM unless told otherwise. False when nothing was signalled. */
export function requestShutdown(h: ProcessHandle, signal: NodeJS.Signals = 'SIGTERM'): boolean {
  if (typeof signal !== 'string' || !(signal in osConstants.signals)) {
    throw new InvalidArgumentError(`signal must be a signal name such as 'SIGTERM' or 'SIGINT', got ${describeValue(signal)}`);
  }
  return signalGroupOrChild(h, signal);
}

/** SIGKILL to the child (its whole group with killTree). False when nothing was signalled. */
export function forceKill(h: ProcessHandle): boolean {
  return signalGroupOrChild(h, 'SIGKILL');
}

/** The exit status, or reason 'timeout' (exited: false) when the child still runs after timeoutMs. */
export function waitForExit(h: ProcessHandle, timeoutMs?: number): Promise<ExitStatus> {
  const ms = validateTimeout(timeoutMs);
  handleInternals(h);
  if (ms === Infinity) return h.exit;
  return new Promise<ExitStatus>((resolve) => {
    const timer = setTimeout(() => resolve({ ...TIMED_OUT }), ms);
    void h.exit.then((st) => {
      clearTimeout(timer);
      resolve(st);
    });
  });
}

/**
 * SIGTERM, wait up to graceMs, then SIGKILL and wait for the exit. With killTree the whole group gets the
 * signals, and the group's other members get the rest of the grace period before they are killed too.
 */
export async function shutdown(h: ProcessHandle, graceMs: number = DEFAULT_GRACE_MS): Promise<ExitStatus> {
  const grace = validateTimeout(graceMs, 'graceMs');
  const i = handleInternals(h);
  const deadline = Date.now() + grace;
  requestShutdown(h);
  let st = await waitForExit(h, grace);
  if (st.reason === 'timeout') {
    forceKill(h);
    st = await h.exit;
  }
  if (i.killTree) await drainGroup(h.pid, Math.max(0, deadline - Date.now()));
  return st;
}

/** Waits (event-driven, via pidfd) for the group's remaining members, then SIGKILLs whoever is left. */
async function drainGroup(pgid: number, remainingMs: number): Promise<void> {
  let members = groupMembers(pgid);
  if (members.length === 0) return;
  if (remainingMs > 0) {
    const ac = new AbortController();
    const timer = new Promise<void>((resolve) => setTimeout(resolve, remainingMs).unref());
    await Promise.race([Promise.all(members.map((pid) => watchExit(pid, undefined, { signal: ac.signal }).catch(() => {}))), timer]);
    ac.abort();
    members = groupMembers(pgid);
    if (members.length === 0) return;
  }
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    return;
  }
  await Promise.all(members.map((pid) => watchExit(pid).catch(() => {})));
}
