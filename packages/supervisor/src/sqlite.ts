// @libipc/supervisor/sqlite: the SQLite store and history sink (node:sqlite on Node 22.5+, else better-sqlite3, an
// optional peer dependency; ERR_LIBIPC_UNSUPPORTED on first use when neither is there).
export { SqliteStore } from './sqlite-store.js';
export { SqliteHistorySink, SqliteHistorySink as SqliteSink } from './sqlite-history.js';
export { SCHEMA_VERSION, type SqliteDatabase, type SqliteStatement } from './sqlite-schema.js';
export { hasSqlite, selectSqliteDriver, sqliteDriver, type SqliteDriver, type SqliteLoaders, type SqliteOpenOptions, type NodeSqliteModule, type BetterSqlite3Constructor } from './sqlite-driver.js';
