import { InvalidArgumentError, MAX_TIMER_MS, option, parseOptions, TimeoutError, validateName, validateTimeout } from '@libipc/shm';
import { procStat, isSelfOrDescendant } from './proc-stat.js';
import { exitedEarly } from './ready.js';
import { forceKill } from './shutdown.js';
import { type ProcessHandle, SPAWN_OPTIONS, type SpawnOptions, spawn } from './spawn.js';

const SPAWN_AND_WAIT_OPTIONS = { ...SPAWN_OPTIONS, timeoutMs: option.ms(0, MAX_TIMER_MS, { infinite: true }) };

export const DEFAULT_SPAWN_TIMEOUT_MS = 10_000;

/** What spawnAndWait needs of a registry entry (a ServiceEntry of @libipc/registry has all of it). */
export interface RegisteredEntry {
  name: string;
  pid: number;
  startTime?: bigint;
  registeredAt: Date;
}

/** What spawnAndWait needs of a registry: a ServiceRegistry of @libipc/registry. */
export interface RegistryView {
  find(name: string): RegisteredEntry | undefined;
  waitFor(name: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<RegisteredEntry | undefined>;
  watch?(opts?: { signal?: AbortSignal }): AsyncIterable<{ type: string; entry: RegisteredEntry }>;
}

export type SpawnAndWaitOptions = { timeoutMs?: number } & SpawnOptions;

/**
 * Spawns the executable and resolves once `name` is registered by the child or one of its descendants after
 * the spawn. Rejects with ExitedEarlyError the moment the child exits first and with TimeoutError at
 * timeoutMs; on any failure the child is killed (and reaped) before the promise rejects.
 */
export async function spawnAndWait(
  registry: RegistryView,
  name: string,
  executable: string,
  args: string[] = [],
  opts: SpawnAndWaitOptions = {},
): Promise<ProcessHandle> {
  if (typeof registry?.find !== 'function' || typeof registry.waitFor !== 'function') {
    throw new InvalidArgumentError('registry must be a ServiceRegistry of @libipc/registry');
  }
  validateName(name, 'service name');
  const { timeoutMs: given, ...spawnOpts } = parseOptions(opts, SPAWN_AND_WAIT_OPTIONS, 'spawnAndWait options');
  const timeoutMs = validateTimeout(given ?? DEFAULT_SPAWN_TIMEOUT_MS);
  const spawnedAt = Date.now();
  const h = spawn(name, executable, args, spawnOpts);
  try {
    await waitForRegistration(registry, name, h, spawnedAt, timeoutMs);
    return h;
  } catch (err) {
    forceKill(h);
    await h.exit;
    throw err;
  }
}

/** Whether `entry` was registered after `spawnedAt` by the child `h` or one of its descendants. */
export function registeredBy(entry: RegisteredEntry | undefined, h: ProcessHandle, spawnedAt: number): boolean {
  if (!entry || entry.registeredAt.getTime() < spawnedAt) return false;
  if (isSelfOrDescendant(entry.pid, h.pid)) return true;
  // With killTree the child leads its own session: a daemonized descendant keeps that session id.
  const s = procStat(entry.pid);
  return s !== undefined && s.session === h.pid;
}

/**
 * Resolves when `name` is registered by `h` (see registeredBy). Rejects with ExitedEarlyError when `h` exits
 * first, TimeoutError at timeoutMs, or the signal's reason. Does not kill the child.
 */
export async function waitForRegistration(
  registry: RegistryView,
  name: string,
  h: ProcessHandle,
  spawnedAt: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const ac = new AbortController();
  const onOuterAbort = () => ac.abort(signal!.reason);
  if (signal?.aborted) throw signal.reason;
  signal?.addEventListener('abort', onOuterAbort, { once: true });
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;

  const failure = new Promise<never>((_, reject) => {
    void h.exit.then((st) => reject(exitedEarly(h, st, `registered ${JSON.stringify(name)}`)));
    if (timeoutMs !== Infinity) {
      timer = setTimeout(
        () => reject(new TimeoutError(`${h.name} (pid ${h.pid}) did not register ${JSON.stringify(name)} within ${timeoutMs} ms; check that it registers that name in this domain, or raise timeoutMs`)),
        timeoutMs,
      );
    }
    ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
  });
  failure.catch(() => {});

  const found = (async (): Promise<boolean> => {
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0 || ac.signal.aborted) return false;
      const entry = await registry.waitFor(name, {
        timeoutMs: timeoutMs === Infinity ? undefined : remaining,
        signal: ac.signal,
      });
      if (ac.signal.aborted) return false;
      if (entry === undefined) continue;
      if (registeredBy(entry, h, spawnedAt)) return true;
      // Another (older) registration holds the name: wait for the name to change, then look again.
      await nameChanged(registry, name, entry, ac.signal);
    }
  })();

  try {
    // `found` is false only at the deadline or on abort; `failure` then carries the error.
    if (!(await Promise.race([found, failure]))) await failure;
  } finally {
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onOuterAbort);
    ac.abort();
    found.catch(() => {});
  }
}

/** Resolves when the entry of `name` is no longer `stale` (event-driven through watch when the registry has it). */
async function nameChanged(registry: RegistryView, name: string, stale: RegisteredEntry, signal: AbortSignal): Promise<void> {
  const same = (e: RegisteredEntry | undefined) => e !== undefined && e.pid === stale.pid && e.registeredAt.getTime() === stale.registeredAt.getTime();
  if (registry.watch) {
    const it = registry.watch({ signal })[Symbol.asyncIterator]();
    try {
      const first = it.next();
      // The watch is subscribed now: a change between waitFor and here is seen by this check.
      if (!same(registry.find(name))) return;
      for (let r = await first; !r.done; r = await it.next()) {
        if (r.value.entry.name === name && !same(registry.find(name))) return;
      }
    } finally {
      void it.return?.();
    }
    return;
  }
  // Fallback for a registry without watch: look again at a modest interval.
  while (!signal.aborted && same(registry.find(name))) {
    await new Promise((r) => setTimeout(r, 50));
  }
}
