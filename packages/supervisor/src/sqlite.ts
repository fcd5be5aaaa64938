// @libipc/supervisor/sqlite: the SQLite store and history sink (needs better-sqlite3, an optional peer dependency).
export { SqliteStore } from './sqlite-store.js';
export { SqliteHistorySink, SqliteHistorySink as SqliteSink } from './sqlite-history.js';
export { SCHEMA_VERSION, type SqliteDatabase, type SqliteStatement } from './sqlite-schema.js';
