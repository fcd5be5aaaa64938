// Which SQLite this process uses: node:sqlite where the running Node has it (22.5+; nothing to install), else
// better-sqlite3 when the user installed it (an optional peer dependency: it needs a prebuilt binary or a
// compiler), else a coded error naming both ways out. Both are seen through the small API the stores use.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { UnsupportedError } from '@libipc/shm';

/** The part of better-sqlite3's API this package uses (its types are not needed to use ours). */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  transaction<F extends (...args: never[]) => unknown>(fn: F): F & { immediate: F };
  close(): void;
  readonly open: boolean;
}

export interface SqliteOpenOptions {
  /** Milliseconds to wait for another connection's lock (SQLite's busy timeout). */
  timeout: number;
  /** Refuse to create the file. */
  fileMustExist?: boolean;
}

export interface SqliteDriver {
  readonly name: 'node:sqlite' | 'better-sqlite3';
  open(path: string, opts: SqliteOpenOptions): SqliteDatabase;
}

/** How each candidate is loaded: undefined when this process does not have it. Tests pass their own. */
export interface SqliteLoaders {
  nodeSqlite(): NodeSqliteModule | undefined;
  betterSqlite3(): BetterSqlite3Constructor | undefined;
}

/** What node:sqlite offers (Node 22.5+). */
export interface NodeSqliteModule {
  DatabaseSync: new (path: string, opts?: { open?: boolean }) => {
    exec(sql: string): void;
    prepare(sql: string): SqliteStatement;
    close(): void;
  };
}
/** better-sqlite3's default export, as far as this package uses it. */
export type BetterSqlite3Constructor = new (path: string, opts?: { timeout?: number; fileMustExist?: boolean }) => SqliteDatabase;

const tryRequire = (id: string): unknown => {
  try {
    return createRequire(import.meta.url)(id);
  } catch {
    return undefined;
  }
};

export const defaultLoaders: SqliteLoaders = {
  nodeSqlite: () => tryRequire('node:sqlite') as NodeSqliteModule | undefined,
  betterSqlite3: () => {
    const mod = tryRequire('better-sqlite3') as BetterSqlite3Constructor | { default: BetterSqlite3Constructor } | undefined;
    return typeof mod === 'function' ? mod : mod?.default;
  },
};

/** The driver to use, in order of preference; ERR_LIBIPC_UNSUPPORTED when there is none. */
export function selectSqliteDriver(loaders: SqliteLoaders = defaultLoaders): SqliteDriver {
  const nodeSqlite = loaders.nodeSqlite();
  if (nodeSqlite?.DatabaseSync) return { name: 'node:sqlite', open: (path, opts) => openNodeSqlite(nodeSqlite, path, opts) };
  const Better = loaders.betterSqlite3();
  if (Better) return { name: 'better-sqlite3', open: (path, opts) => new Better(path, { timeout: opts.timeout, fileMustExist: opts.fileMustExist ?? false }) };
  throw new UnsupportedError(
    `a SQLite store needs SQLite, and this Node (${process.version}) has no node:sqlite and better-sqlite3 is not installed: ` +
      `run Node 22.5 or newer, or npm install better-sqlite3@^12.11 (needs a prebuilt binary or a compiler), or use a JSON store (a .json path)`,
  );
}

let chosen: SqliteDriver | undefined;
/** The process's driver, chosen once on first use. */
export function sqliteDriver(): SqliteDriver {
  chosen ??= selectSqliteDriver();
  return chosen;
}

/** Whether this process can open SQLite files (without throwing). */
export function hasSqlite(): boolean {
  try {
    sqliteDriver();
    return true;
  } catch {
    return false;
  }
}

// SQLite's primary result codes, as better-sqlite3 names them in `code` (node:sqlite gives the number in `errcode`).
const RESULT_CODES: Record<number, string> = { 5: 'SQLITE_BUSY', 6: 'SQLITE_LOCKED', 11: 'SQLITE_CORRUPT', 14: 'SQLITE_CANTOPEN', 26: 'SQLITE_NOTADB' };

function withSqliteCode<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as { code?: string; errcode?: number };
    if (typeof e?.errcode === 'number') e.code = RESULT_CODES[e.errcode & 0xff] ?? `SQLITE_ERROR_${e.errcode}`;
    throw err;
  }
}

/** node:sqlite's DatabaseSync behind better-sqlite3's face: pragma(), transaction(), `open`, error codes. */
function openNodeSqlite(mod: NodeSqliteModule, path: string, opts: SqliteOpenOptions): SqliteDatabase {
  if (opts.fileMustExist && !existsSync(path)) {
    throw Object.assign(new Error(`unable to open database file ${path}: it does not exist`), { code: 'SQLITE_CANTOPEN' });
  }
  const db = withSqliteCode(() => new mod.DatabaseSync(path));
  let open = true;
  let depth = 0;
  const exec = (sql: string) => withSqliteCode(() => db.exec(sql));
  exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(opts.timeout))}`);
  const statement = (sql: string): SqliteStatement => {
    const st = withSqliteCode(() => db.prepare(sql));
    return {
      run: (...p) => withSqliteCode(() => st.run(...p)),
      get: (...p) => withSqliteCode(() => st.get(...p)),
      all: (...p) => withSqliteCode(() => st.all(...p)),
    };
  };
  // Like better-sqlite3: a transaction function; nested calls become savepoints; an exception rolls back.
  const transaction = <F extends (...args: never[]) => unknown>(fn: F): F & { immediate: F } => {
    const run = (begin: string) =>
      ((...args: never[]) => {
        const sp = `libipc_sp${depth}`;
        exec(depth === 0 ? begin : `SAVEPOINT ${sp}`);
        depth++;
        try {
          const result = fn(...args);
          depth--;
          exec(depth === 0 ? 'COMMIT' : `RELEASE ${sp}`);
          return result;
        } catch (err) {
          depth--;
          exec(depth === 0 ? 'ROLLBACK' : `ROLLBACK TO ${sp}; RELEASE ${sp}`);
          throw err;
        }
      }) as F;
    return Object.assign(run('BEGIN'), { immediate: run('BEGIN IMMEDIATE') });
  };
  return {
    prepare: statement,
    exec,
    pragma(sql, o) {
      const rows = statement(`PRAGMA ${sql}`).all() as Array<Record<string, unknown>>;
      return o?.simple ? (rows[0] === undefined ? undefined : Object.values(rows[0])[0]) : rows;
    },
    transaction,
    close() {
      if (!open) return;
      open = false;
      db.close();
    },
    get open() {
      return open;
    },
  };
}
