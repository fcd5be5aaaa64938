// Which SQLite a process uses (node:sqlite, else better-sqlite3, else a coded error), and node:sqlite's API seen
// through better-sqlite3's face. This Node may lack node:sqlite (it came in 22.5): its stand-in here is a thin
// DatabaseSync over better-sqlite3 that answers as node:sqlite does (numeric `errcode`, all() of a statement
// without rows is []); the selection itself is a table of loaders.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type NodeSqliteModule, type SqliteLoaders, type SqliteStatement, selectSqliteDriver } from '../src/sqlite.js';

type Better = new (path: string) => {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement & { reader: boolean };
  close(): void;
};
const Better = createRequire(import.meta.url)('better-sqlite3') as Better;
const ERRCODES: Record<string, number> = { SQLITE_BUSY: 5, SQLITE_NOTADB: 26, SQLITE_CONSTRAINT_PRIMARYKEY: 1555, SQLITE_ERROR: 1 };
const asNodeSqlite = (fn: () => unknown) => {
  try {
    return fn();
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'SQLITE_ERROR';
    throw Object.assign(new Error((err as Error).message), { code: 'ERR_SQLITE_ERROR', errcode: ERRCODES[code] ?? 1 });
  }
};
const standIn: NodeSqliteModule = {
  DatabaseSync: class {
    private db: InstanceType<Better>;
    constructor(path: string) {
      this.db = asNodeSqlite(() => new Better(path)) as InstanceType<Better>;
    }
    exec(sql: string) {
      asNodeSqlite(() => this.db.exec(sql));
    }
    prepare(sql: string): SqliteStatement {
      const st = asNodeSqlite(() => this.db.prepare(sql)) as SqliteStatement & { reader: boolean };
      return {
        run: (...p) => asNodeSqlite(() => st.run(...p)) as { changes: number },
        get: (...p) => asNodeSqlite(() => (st.reader ? st.get(...p) : (st.run(...p), undefined))),
        all: (...p) => asNodeSqlite(() => (st.reader ? st.all(...p) : (st.run(...p), []))) as unknown[],
      };
    }
    close() {
      this.db.close();
    }
  },
};

const none = () => undefined;
const dir = mkdtempSync(join(tmpdir(), 'libipc-sqlite-driver-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('choosing SQLite', () => {
  it.each<[string, SqliteLoaders, string]>([
    ['node:sqlite and better-sqlite3', { nodeSqlite: () => standIn, betterSqlite3: () => Better as never }, 'node:sqlite'],
    ['node:sqlite only', { nodeSqlite: () => standIn, betterSqlite3: none }, 'node:sqlite'],
    ['better-sqlite3 only (Node 20)', { nodeSqlite: none, betterSqlite3: () => Better as never }, 'better-sqlite3'],
  ])('%s → %s', (_case, loaders, expected) => {
    expect(selectSqliteDriver(loaders).name).toBe(expected);
  });

  it('neither → ERR_LIBIPC_UNSUPPORTED naming both ways out (and the JSON store)', () => {
    let err: unknown;
    try {
      selectSqliteDriver({ nodeSqlite: none, betterSqlite3: none });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_LIBIPC_UNSUPPORTED' });
    expect((err as Error).message).toMatch(/Node 22\.5/);
    expect((err as Error).message).toMatch(/npm install better-sqlite3/);
    expect((err as Error).message).toMatch(/JSON store/);
  });

  it('the real loaders of this process find a driver (better-sqlite3 is a dev dependency here)', () => {
    expect(['node:sqlite', 'better-sqlite3']).toContain(selectSqliteDriver().name);
  });
});

describe('node:sqlite behind better-sqlite3’s face', () => {
  const driver = selectSqliteDriver({ nodeSqlite: () => standIn, betterSqlite3: none });

  it('pragmas read simply, transactions commit, roll back on a throw, and nest as savepoints', () => {
    const db = driver.open(join(dir, 'a.db'), { timeout: 1000 });
    expect(db.pragma('journal_mode = WAL', { simple: true })).toBe('wal');
    expect(db.pragma('busy_timeout', { simple: true })).toBe(1000);
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)');
    const put = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    db.transaction(() => {
      put.run('a', 1);
      put.run('b', 2);
    }).immediate();
    expect(() =>
      db.transaction(() => {
        put.run('c', 3);
        throw new Error('undo');
      })(),
    ).toThrow('undo');
    db.transaction(() => {
      put.run('d', 4);
      expect(() => db.transaction(() => (put.run('e', 5), put.run('a', 9)))()).toThrow(); // the inner one fails whole
    })();
    expect(db.prepare('SELECT k FROM t ORDER BY k').all()).toEqual([{ k: 'a' }, { k: 'b' }, { k: 'd' }]);
    expect(db.open).toBe(true);
    db.close();
    db.close(); // idempotent
    expect(db.open).toBe(false);
  });

  it('errors carry better-sqlite3’s codes (SQLITE_NOTADB for a file that is not a database), and fileMustExist is kept', () => {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'not a database, just text that is long enough to have a header '.repeat(20));
    const db = driver.open(junk, { timeout: 0 });
    expect(() => db.pragma('user_version', { simple: true })).toThrow(expect.objectContaining({ code: 'SQLITE_NOTADB' }));
    db.close();
    expect(() => driver.open(join(dir, 'absent.db'), { timeout: 0, fileMustExist: true })).toThrow(expect.objectContaining({ code: 'SQLITE_CANTOPEN' }));
  });
});
