import { IncompatibleError, LibipcError, SystemError } from '@libipc/shm';
import { type SqliteDatabase, sqliteDriver } from './sqlite-driver.js';

export type { SqliteDatabase, SqliteStatement } from './sqlite-driver.js';

/** Opens (and migrates) a supervisor database with the process's SQLite driver (node:sqlite or better-sqlite3). */
export function openDatabase(path: string): SqliteDatabase {
  const driver = sqliteDriver();
  let db: SqliteDatabase | undefined;
  try {
    db = driver.open(path, { timeout: 5000 });
    // WAL: readers never block the writer; NORMAL: durable against a crash of this process (not of the machine).
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, path);
    return db;
  } catch (err) {
    if (db?.open) db.close();
    if (err instanceof LibipcError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new IncompatibleError(`${path} is not a usable SQLite database (${(err as Error).message}); move it away or use another path`);
    }
    throw new SystemError(`cannot open the SQLite database ${path}: ${(err as Error).message}`, { errno: code || 'EIO', syscall: 'open', cause: err });
  }
}

/** Each migration moves the schema one version up; PRAGMA user_version records where a file is. */
const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE services (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE instances (
        name TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        desired TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
        state TEXT NOT NULL,
        pid INTEGER,
        start_time TEXT,
        restarts INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX instances_service ON instances (service);
      INSERT INTO meta (key, value) VALUES ('format', 'libipc-supervisor');
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        timestamp TEXT NOT NULL,
        type TEXT NOT NULL,
        name TEXT NOT NULL,
        service TEXT NOT NULL,
        pid INTEGER,
        event TEXT NOT NULL
      );
      CREATE INDEX history_name ON history (name, id);
    `,
  },
  {
    version: 3,
    sql: `ALTER TABLE instances ADD COLUMN contract_restarts INTEGER NOT NULL DEFAULT 0;`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

function migrate(db: SqliteDatabase, path: string): void {
  const step = db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new IncompatibleError(`${path} has supervisor schema version ${current}; this @libipc/supervisor knows up to ${SCHEMA_VERSION}: upgrade it`);
    }
    if (current === 0) {
      const tables = db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).get() as { n: number };
      if (tables.n > 0) throw new IncompatibleError(`${path} is a SQLite database of something else (it has tables but no supervisor schema); use another file`);
    } else {
      const format = db.prepare(`SELECT value FROM meta WHERE key = 'format'`).get() as { value: string } | undefined;
      if (format?.value !== 'libipc-supervisor') throw new IncompatibleError(`${path} is not a libipc supervisor database; use another file`);
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
  });
  // IMMEDIATE: two connections opening the same new file migrate one after the other.
  step.immediate();
}
