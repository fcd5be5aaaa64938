import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { ExitStatus } from '@libipc/process';
import { isAlive, processIdentity, watchExit } from '@libipc/shm';
import { ENV } from './environment.js';

/** A process that is not our child, known by identity (never by pid alone). */
export interface Identity {
  pid: number;
  startTime: bigint;
}

interface Stat {
  state: string;
  ppid: number;
  pgrp: number;
  startTime: bigint;
  /** waitpid-style status, only meaningful for a zombie (field 52, Linux 3.5+). */
  exitCode: number | undefined;
}

function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).trimEnd().split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  return {
    state: f[0]!,
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    startTime: BigInt(f[19]!),
    exitCode: f[49] === undefined ? undefined : Number(f[49]),
  };
}

export function alive(id: Identity): boolean {
  return isAlive(id.pid, id.startTime);
}

/** True when `id` has a SIGKILL pending: it is as good as dead (it runs no more code of its own). */
export function dying(id: Identity): boolean {
  if (!alive(id)) return true;
  let status: string;
  try {
    status = readFileSync(`/proc/${id.pid}/status`, 'latin1');
  } catch {
    return true;
  }
  const kill = 1n << BigInt(constants.signals.SIGKILL - 1);
  for (const field of ['ShdPnd', 'SigPnd']) {
    const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
    if (m && (BigInt(`0x${m[1]}`) & kill) !== 0n) return true;
  }
  return false;
}

/**
 * How an adopted process ended, when it can still be read: a zombie nobody reaped yet keeps its wait status
 * in /proc. Otherwise unknown (exited: false, exitCode and signal null).
 */
export function exitOfGone(id: Identity): ExitStatus {
  const s = stat(id.pid);
  if (s && s.state === 'Z' && s.startTime === id.startTime && s.exitCode !== undefined) {
    const w = s.exitCode;
    const sig = w & 0x7f;
    if (sig === 0) return { reason: 'exited', exited: true, exitCode: (w >> 8) & 0xff, signaled: false, signal: null };
    const name = signalName(sig);
    if (name) return { reason: 'signaled', exited: false, exitCode: null, signaled: true, signal: name };
  }
  return { reason: 'exited', exited: false, exitCode: null, signaled: false, signal: null };
}

function signalName(n: number): NodeJS.Signals | undefined {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] as NodeJS.Signals | undefined;
}

let bootTimeMs: number | undefined;

/** When a process started, in ms since the epoch, from its start time in clock ticks (USER_HZ is 100 on Linux). */
export function startedAtMs(startTime: bigint): number {
  if (bootTimeMs === undefined) {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'));
    bootTimeMs = m ? Number(m[1]) * 1000 : 0;
  }
  return bootTimeMs + Number(startTime) * 10;
}

/** Signals the process (its group, when it leads one: services run with killTree) if it is still `id`. */
export function signal(id: Identity, sig: NodeJS.Signals): boolean {
  const s = stat(id.pid);
  if (!s || s.state === 'Z' || s.startTime !== id.startTime) return false;
  try {
    process.kill(s.pgrp === id.pid ? -id.pid : id.pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, up to graceMs for the exit (seen through pidfd), then SIGKILL and wait. */
export async function stopAdopted(id: Identity, graceMs: number): Promise<void> {
  if (!signal(id, 'SIGTERM')) return;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), graceMs);
  try {
    await watchExit(id.pid, id.startTime, { signal: ac.signal });
    return;
  } catch {
    // grace ran out
  } finally {
    clearTimeout(timer);
  }
  signal(id, 'SIGKILL');
  await watchExit(id.pid, id.startTime);
}

export interface Orphan extends Identity {
  service: string;
  instanceId: string;
}

/**
 * Processes an earlier manager (`owner`, now dead) started and that still run: found by the environment
 * contract every service gets (LIBIPC_PARENT_PID/START = that manager), so even a child whose pid never
 * reached the store is found. A descendant of such a process (same environment) is not counted.
 */
export function findOrphans(owner: Identity, skip: ReadonlySet<number>): Orphan[] {
  const found = new Map<number, Orphan & { ppid: number }>();
  const uid = process.getuid?.();
  for (const d of readdirSync('/proc')) {
    const c = d.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(d);
    if (skip.has(pid) || pid === process.pid) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // gone, or another user's
    }
    if (!env.includes(`${ENV.parentPid}=${owner.pid}\0`) || !env.includes(`${ENV.parentStart}=${owner.startTime}\0`)) continue;
    const vars = new Map(env.split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
    const service = vars.get(ENV.service);
    const instanceId = vars.get(ENV.instanceId);
    const s = stat(pid);
    if (!service || instanceId === undefined || !s || s.state === 'Z') continue;
    if (uid !== undefined) {
      try {
        if (!readFileSync(`/proc/${pid}/status`, 'latin1').includes(`\nUid:\t${uid}\t`)) continue;
      } catch {
        continue;
      }
    }
    found.set(pid, { pid, startTime: s.startTime, service, instanceId, ppid: s.ppid });
  }
  return [...found.values()].filter((o) => !found.has(o.ppid)).map(({ ppid: _ppid, ...o }) => o);
}

export function identityOf(pid: number): Identity | undefined {
  return processIdentity(pid);
}
