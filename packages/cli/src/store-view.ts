import { existsSync } from 'node:fs';
import { NotFoundError, isAlive } from '@libipc/shm';
import type { HistoryEvent, ServiceSpec, StoredInstance } from '@libipc/supervisor';
import { type StoreFile, openStoreFile } from './store-file.js';
import { startedAtMs } from './proc.js';

/** One service (or instance) of a supervisor store, as `libipc ps` shows it. */
export interface ServiceRow {
  name: string;
  service: string;
  state: string;
  desired: string;
  pid: number | null;
  /** Its process is alive by identity (pid + start time). */
  alive: boolean;
  restarts: number;
  uptimeMs: number | null;
  lastExit: { code: number | null; signal: string | null; time: string } | null;
  reason: string | null;
  /** The last restart (from the history): what caused it, why, when (ISO). */
  lastRestart: { trigger: string; reason: string; time: string } | null;
  store: string;
  /** What to show as its state: the stored one while its run lives; 'orphaned' (still running, no run manages it) or 'gone' (it ended after its run died) otherwise. */
  shownState: string;
  /** No live run manages this process: the dashboard cannot act on it. */
  orphaned: boolean;
  /** What can be done about an orphaned or gone one. */
  note: string | null;
}

export interface StoreView {
  store: string;
  /** The manager holding the store (a `libipc run`), if one does. */
  manager: { pid: number; alive: boolean } | null;
  specs: ServiceSpec[];
  rows: ServiceRow[];
}

/** Reads a supervisor store file (while its manager runs, too: SQLite's WAL lets readers in). */
export function readStore(path: string): StoreView {
  if (!existsSync(path)) {
    throw new NotFoundError(`there is no store at ${path}; 'libipc run <config> --store ${path}' makes one`);
  }
  const store = openStoreFile(path);
  try {
    return viewStore(store);
  } finally {
    store.close();
  }
}

/** The view of a store that is already open (the dashboard keeps one open and reads it again on each change). */
export function viewStore(file: StoreFile): StoreView {
  const snap = file.store.load();
  const history = file.history;
  const store = file;
  const now = Date.now();
  // By name, whichever store: SQLite reads them sorted, a JSON file in the order they were written.
  const owner = snap.owner;
  const manager = owner ? { pid: owner.pid, alive: isAlive(owner.pid, BigInt(owner.startTime)) } : null;
  const rows = [...snap.instances]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((i) => row(i, recent(history, i.name), store.path, now))
    .map((r) => ({ ...r, ...shownState(r, manager, store.path) }));
  return {
    store: store.path,
    manager,
    specs: snap.services.map((s) => s.spec),
    rows,
  };
}

function row(i: StoredInstance, last: { exit?: HistoryEvent; restart?: HistoryEvent }, store: string, now: number): ServiceRow {
  const exit = last.exit;
  const restart = last.restart;
  const alive = i.pid !== undefined && i.startTime !== undefined && isAlive(i.pid, BigInt(i.startTime));
  return {
    name: i.name,
    service: i.service,
    state: i.state,
    desired: i.desired,
    pid: i.pid ?? null,
    alive,
    restarts: i.restarts,
    uptimeMs: alive && i.startTime !== undefined ? Math.max(0, now - startedAtMs(BigInt(i.startTime))) : null,
    lastExit: exit ? { code: exit.exitCode ?? null, signal: exit.signal ?? null, time: exit.timestamp } : null,
    reason: i.reason ?? null,
    // Restart events of earlier versions carry no trigger: not guessed.
    lastRestart: restart?.trigger ? { trigger: restart.trigger, reason: restart.reason ?? '', time: restart.timestamp } : null,
    store,
    shownState: i.state,
    orphaned: false,
    note: null,
  };
}

const HAS_PROCESS = new Set(['starting', 'running', 'stopping', 'backoff']);

/** A row as the user should see it: a state stored by a run that died is not the truth any more. */
export function shownState(
  r: Pick<ServiceRow, 'state' | 'alive' | 'pid'>,
  manager: { pid: number; alive: boolean } | null,
  store: string,
): Pick<ServiceRow, 'shownState' | 'orphaned' | 'note'> {
  if (manager?.alive) return { shownState: r.state, orphaned: false, note: null };
  const who = manager ? `its libipc run (pid ${manager.pid}) is dead` : 'no libipc run holds its store';
  if (r.alive) {
    return { shownState: 'orphaned', orphaned: true, note: `no run manages it (kill ${r.pid} ends it): ${who}; 'libipc run <config> --store ${store}' adopts it` };
  }
  if (HAS_PROCESS.has(r.state)) {
    return { shownState: 'gone', orphaned: false, note: `ended after its run: it was ${r.state} when ${who}; 'libipc run <config> --store ${store}' starts it again` };
  }
  return { shownState: r.state, orphaned: false, note: null };
}

/** The last exit and the last restart of `name` among its recent history events. */
function recent(history: StoreFile['history'], name: string): { exit?: HistoryEvent; restart?: HistoryEvent } {
  const events = history.events({ name, limit: 50 }).reverse();
  return { exit: events.find((e) => e.type === 'exit'), restart: events.find((e) => e.type === 'restart') };
}
