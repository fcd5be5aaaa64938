// A supervisor store file as the cli uses it, by its extension: `.json` → JsonFileStore with a JSONL history beside
// it (works everywhere), anything else → SQLite (node:sqlite or better-sqlite3; ERR_LIBIPC_UNSUPPORTED naming the
// ways out when this machine has neither).
import { type HistoryEvent, type HistorySink, JsonFileStore, JsonlHistorySink, type Store } from '@libipc/supervisor';
import { SqliteHistorySink, SqliteStore, hasSqlite } from '@libipc/supervisor/sqlite';

export interface StoreFile {
  readonly path: string;
  readonly store: Store & { close(): void; changedExternally(): boolean };
  readonly history: HistorySink & { events(opts?: { name?: string; limit?: number }): HistoryEvent[] };
  close(): void;
}

export const isJsonStore = (path: string): boolean => path.endsWith('.json');

/** Where a JSON store keeps its history: beside it, `<name>.history.jsonl`. */
export const jsonHistoryPath = (path: string): string => `${path.slice(0, -'.json'.length)}.history.jsonl`;

/** Opens the store at `path` (created when missing). */
export function openStoreFile(path: string): StoreFile {
  if (isJsonStore(path)) {
    const store = new JsonFileStore(path);
    return { path, store, history: new JsonlHistorySink(jsonHistoryPath(path)), close: () => store.close() };
  }
  const store = new SqliteStore(path);
  return { path, store, history: new SqliteHistorySink(store), close: () => store.close() };
}

/** The extension of a store the cli makes on its own (a run without --store): SQLite where this Node has it. */
export function defaultStoreExtension(): '.db' | '.json' {
  return hasSqlite() ? '.db' : '.json';
}
