import { createHash } from 'node:crypto';
import { type FSWatcher, existsSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { LibipcError, isAlive } from '@libipc/shm';
import { type HistoryEvent, JsonlHistorySink } from '@libipc/supervisor';
import { SqliteStore, sqliteDriver } from '@libipc/supervisor/sqlite';
import { storeLabel } from '../log-select.js';
import { type StoreFile, openStoreFile } from '../store-file.js';
import { type StoreView as StoreRows, viewStore } from '../store-view.js';
import type { TimelineEvent } from './model.js';

/** Events read when a store is first opened; later ones as they are written. */
const FIRST_EVENTS = 300;
/** A burst of writes (a restart touches several rows) is read once. */
const SETTLE_MS = 25;
/** Reads never wait long for a writer: the dashboard's event loop must not stall on a locked file. */
const BUSY_TIMEOUT_MS = 250;

/** The dashboard's id of a store: short, stable, and safe in a URL. */
export function storeId(path: string): string {
  return createHash('sha256').update(path).digest('hex').slice(0, 12);
}

/**
 * One supervisor store file, followed as it changes: inotify on its folder (the file, its -wal and -shm, or its
 * history) wakes a read, and the store tells whether another process really committed (SQLite's data_version, the
 * JSON file's stamp). One store is kept open for the dashboard's life; a missing file is waited for, never created.
 */
export class StoreWatch {
  readonly id: string;
  rows: StoreRows | undefined;
  /** When rows were read (their uptimes are as of then). */
  readAt = 0;
  problem: string | null = null;
  private store: StoreFile | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastHistoryId = 0;
  /** JSON stores: how far the JSONL history has been read. */
  private historyOffset = -1;
  private closed = false;

  constructor(
    readonly path: string,
    /** Called after each read that may have changed something; `events` are new history events. */
    private readonly onUpdate: (events: Array<Omit<TimelineEvent, 'id'>>) => void,
  ) {
    this.id = storeId(path);
  }

  start(): void {
    const base = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_e, f) => {
        if (f && String(f).startsWith(base)) this.schedule();
      });
      this.watcher.on('error', () => undefined);
    } catch (err) {
      this.problem = `cannot watch the folder of ${this.path}: ${(err as Error).message}`;
    }
    this.read(true);
  }

  /** A gauge sample: read again if another process committed; else only check who is still alive. */
  sample(): void {
    if (this.closed) return;
    if (!this.store || !existsSync(this.path) || this.store.store.changedExternally()) {
      this.read(true);
      return;
    }
    const r = this.rows;
    if (!r) return;
    let changed = false;
    for (const row of r.rows) {
      const alive = row.pid !== null && row.alive && isAlive(row.pid);
      if (alive !== row.alive) {
        row.alive = alive;
        row.uptimeMs = alive ? row.uptimeMs : null;
        changed = true;
      }
    }
    if (r.manager?.alive && !isAlive(r.manager.pid)) {
      r.manager.alive = false;
      changed = true;
    }
    if (changed) this.onUpdate([]);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
    this.store?.close();
    this.store = undefined;
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.read(false);
    }, SETTLE_MS);
    this.timer.unref();
  }

  private read(force: boolean): void {
    if (this.closed) return;
    if (!existsSync(this.path)) {
      // Removed (or not made yet): forget the open file, wait for a new one.
      this.store?.close();
      this.store = undefined;
      this.lastHistoryId = 0;
      this.historyOffset = -1;
      this.rows = undefined;
      this.problem = `no store at ${this.path} yet; 'libipc run <config> --store ${this.path}' makes one`;
      this.onUpdate([]);
      return;
    }
    try {
      if (!this.store) {
        // SqliteStore's open takes the write lock for a moment (its schema check) and would wait 5 s for a holder.
        if (!this.path.endsWith('.json') && isLocked(this.path)) {
          this.problem = `${this.path} is locked by another process; read again when it changes`;
          this.onUpdate([]);
          return;
        }
        this.store = openStoreFile(this.path);
        if (this.store.store instanceof SqliteStore) this.store.store.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      } else if (!force && !this.store.store.changedExternally()) {
        return;
      }
      this.rows = viewStore(this.store);
      this.readAt = Date.now();
      const events = this.newEvents(this.store);
      this.problem = null;
      this.onUpdate(events);
    } catch (err) {
      this.problem = `cannot read ${this.path}: ${err instanceof LibipcError ? `${err.message} (${err.code})` : (err as Error).message}`;
      if (this.store && !(err as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
        this.store.close();
        this.store = undefined;
      }
      this.onUpdate([]);
    }
  }

  /** Events appended to a JSONL history since the last read (the last FIRST_EVENTS on the first read). */
  private newJsonEvents(history: JsonlHistorySink): HistoryEvent[] {
    const first = this.historyOffset < 0;
    const { events, next } = history.since(Math.max(0, this.historyOffset));
    this.historyOffset = next;
    return first ? events.slice(-FIRST_EVENTS) : events;
  }

  /** History events written since the last read: rows of the history table by id, or lines of the JSONL file. */
  private newEvents(file: StoreFile): Array<Omit<TimelineEvent, 'id'>> {
    const store = file.store;
    if (!(store instanceof SqliteStore)) return file.history instanceof JsonlHistorySink ? this.newJsonEvents(file.history).map(timelineEvent) : [];
    const rows = (
      this.lastHistoryId === 0
        ? store.db.prepare(`SELECT id, event FROM history ORDER BY id DESC LIMIT ?`).all(FIRST_EVENTS).reverse()
        : store.db.prepare(`SELECT id, event FROM history WHERE id > ? ORDER BY id LIMIT 1000`).all(this.lastHistoryId)
    ) as Array<{ id: number; event: string }>;
    if (rows.length > 0) this.lastHistoryId = rows[rows.length - 1]!.id;
    else if (this.lastHistoryId === 0) this.lastHistoryId = -1; // read once, empty: from now on only new ones
    const out: Array<Omit<TimelineEvent, 'id'>> = [];
    for (const r of rows) {
      let e: HistoryEvent;
      try {
        e = JSON.parse(r.event) as HistoryEvent;
      } catch {
        continue;
      }
      out.push({ ...timelineEvent(e), store: storeLabel(this.path) });
    }
    return out;
  }
}

const timelineEvent = (e: HistoryEvent): Omit<TimelineEvent, 'id'> => ({
  at: Date.parse(e.timestamp) || Date.now(),
  source: 'supervisor',
  type: String(e.type),
  name: String(e.name),
  detail: describe(e),
});

/** True when another connection holds the file's write lock now (asked without waiting; never creates the file). */
function isLocked(path: string): boolean {
  let db: { exec(sql: string): void; close(): void } | undefined;
  try {
    db = sqliteDriver().open(path, { fileMustExist: true, timeout: 0 });
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return false;
  } catch (err) {
    return String((err as { code?: string }).code).startsWith('SQLITE_BUSY') || String((err as { code?: string }).code).startsWith('SQLITE_LOCKED');
  } finally {
    db?.close();
  }
}

function describe(e: HistoryEvent): string {
  const parts: string[] = [];
  if (e.pid !== undefined) parts.push(`pid ${e.pid}`);
  if (e.type === 'exit') parts.push(e.signal ? `killed by ${e.signal}` : `exit code ${e.exitCode ?? 'unknown'}`);
  if (e.backoffMs !== undefined) parts.push(`in ${e.backoffMs} ms`);
  if (e.restarts !== undefined && e.type !== 'exit') parts.push(`restarts ${e.restarts}`);
  if (e.trigger) parts.push(`trigger ${e.trigger}`);
  if (e.reason) parts.push(e.reason);
  return parts.join(', ');
}
