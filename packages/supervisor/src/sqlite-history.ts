import { InvalidArgumentError, describeValue, option, parseOptions } from '@libipc/shm';
import type { HistoryEvent, HistorySink } from './history.js';
import { type SqliteDatabase, openDatabase } from './sqlite-schema.js';
import { SqliteStore } from './sqlite-store.js';

/**
 * A history sink that inserts every event into the `history` table of a supervisor SQLite file: its own
 * connection to a path, or the connection of a SqliteStore (one file for state and history).
 */
export class SqliteHistorySink implements HistorySink {
  private readonly db: SqliteDatabase;
  private readonly ownsDb: boolean;
  private readonly insert: ReturnType<SqliteDatabase['prepare']>;

  constructor(target: string | SqliteStore | { path: string }) {
    if (typeof target === 'object' && target !== null && !(target instanceof SqliteStore)) target = target.path;
    if (target instanceof SqliteStore) {
      this.db = target.db;
      this.ownsDb = false;
    } else if (typeof target === 'string' && target !== '' && !target.includes('\0')) {
      this.db = openDatabase(target);
      this.ownsDb = true;
    } else {
      throw new InvalidArgumentError(`SqliteHistorySink needs a database path or a SqliteStore, got ${describeValue(target)}`);
    }
    this.insert = this.db.prepare(`INSERT INTO history (timestamp, type, name, service, pid, event) VALUES (?, ?, ?, ?, ?, ?)`);
  }

  write(event: HistoryEvent): void {
    this.insert.run(event.timestamp, event.type, event.name, event.service, event.pid ?? null, JSON.stringify(event));
  }

  /** The last `limit` events (oldest first), of one name or of all. */
  events(opts?: { name?: string; limit?: number }): HistoryEvent[] {
    const o = parseOptions(opts, { name: option.string(63), limit: option.int(1, 1_000_000) }, 'events options');
    const limit = o.limit ?? 1000;
    const rows = (
      o.name === undefined
        ? this.db.prepare(`SELECT event FROM history ORDER BY id DESC LIMIT ?`).all(limit)
        : this.db.prepare(`SELECT event FROM history WHERE name = ? ORDER BY id DESC LIMIT ?`).all(o.name, limit)
    ) as Array<{ event: string }>;
    return rows.reverse().map((r) => JSON.parse(r.event) as HistoryEvent);
  }

  close(): void {
    if (this.ownsDb && this.db.open) this.db.close();
  }
}
