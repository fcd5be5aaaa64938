import { InvalidArgumentError, describeValue } from '@libipc/shm';
import { type SqliteDatabase, openDatabase } from './sqlite-schema.js';
import { type Store, type StoreOwner, type StoreSnapshot, type StoredInstance, type StoredService, checkSnapshot } from './store.js';

interface InstanceRow {
  name: string;
  service: string;
  desired: string;
  state: string;
  pid: number | null;
  start_time: string | null;
  restarts: number;
  contract_restarts: number;
  reason: string | null;
  updated_at: number;
}

/**
 * A Store in a SQLite file (better-sqlite3, WAL, versioned schema migrations). Every change is its own
 * small transaction, durable against a crash of this process as soon as the call returns. Another process
 * may edit the file (e.g. the sqlite3 shell); the reconciler sees it through PRAGMA data_version.
 */
export class SqliteStore implements Store {
  readonly path: string;
  /** The connection (for SqliteHistorySink to share). */
  readonly db: SqliteDatabase;
  private seenVersion: number;
  private readonly stmts: {
    putService: ReturnType<SqliteDatabase['prepare']>;
    delService: ReturnType<SqliteDatabase['prepare']>;
    delServiceInstances: ReturnType<SqliteDatabase['prepare']>;
    putInstance: ReturnType<SqliteDatabase['prepare']>;
    delInstance: ReturnType<SqliteDatabase['prepare']>;
    putMeta: ReturnType<SqliteDatabase['prepare']>;
    delMeta: ReturnType<SqliteDatabase['prepare']>;
  };

  /** `path`: the database file (created with its schema when missing), or `{ path }`. */
  constructor(target: string | { path: string }) {
    const path = typeof target === 'object' && target !== null ? target.path : target;
    if (typeof path !== 'string' || path === '' || path.includes('\0')) {
      throw new InvalidArgumentError(`SqliteStore path must be a non-empty string, got ${describeValue(path)}`);
    }
    this.path = path;
    this.db = openDatabase(path);
    const db = this.db;
    this.stmts = {
      putService: db.prepare(
        `INSERT INTO services (name, spec, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
      ),
      delService: db.prepare(`DELETE FROM services WHERE name = ?`),
      delServiceInstances: db.prepare(`DELETE FROM instances WHERE service = ?`),
      putInstance: db.prepare(
        `INSERT INTO instances (name, service, desired, state, pid, start_time, restarts, contract_restarts, reason, updated_at)
         VALUES (@name, @service, @desired, @state, @pid, @start_time, @restarts, @contract_restarts, @reason, @updated_at)
         ON CONFLICT (name) DO UPDATE SET service = excluded.service, desired = excluded.desired, state = excluded.state,
           pid = excluded.pid, start_time = excluded.start_time, restarts = excluded.restarts,
           contract_restarts = excluded.contract_restarts, reason = excluded.reason, updated_at = excluded.updated_at`,
      ),
      delInstance: db.prepare(`DELETE FROM instances WHERE name = ?`),
      putMeta: db.prepare(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
      delMeta: db.prepare(`DELETE FROM meta WHERE key = ?`),
    };
    this.seenVersion = this.dataVersion();
  }

  load(): StoreSnapshot {
    const read = this.db.transaction(() => {
      const services = (this.db.prepare(`SELECT name, spec FROM services ORDER BY name`).all() as Array<{ name: string; spec: string }>).map((r) => ({
        spec: parseJson(r.spec, `${this.path}: spec of ${r.name}`),
      }));
      const instances = (this.db.prepare(`SELECT * FROM instances ORDER BY name`).all() as InstanceRow[]).map((r) => {
        const i: Record<string, unknown> = {
          name: r.name,
          service: r.service,
          desired: r.desired,
          state: r.state,
          restarts: r.restarts,
          contractRestarts: r.contract_restarts,
          updatedAt: r.updated_at,
        };
        if (r.pid !== null) i.pid = r.pid;
        if (r.start_time !== null) i.startTime = r.start_time;
        if (r.reason !== null) i.reason = r.reason;
        return i;
      });
      const ownerRow = this.db.prepare(`SELECT value FROM meta WHERE key = 'owner'`).get() as { value: string } | undefined;
      return { services, instances, ...(ownerRow ? { owner: parseJson(ownerRow.value, `${this.path}: owner`) } : {}) };
    });
    const data = read();
    this.seenVersion = this.dataVersion();
    return checkSnapshot(data, `store ${this.path}`);
  }

  putService(service: StoredService): void {
    this.stmts.putService.run(service.spec.name, JSON.stringify(service.spec), Date.now());
  }

  deleteService(name: string): void {
    this.db.transaction(() => {
      this.stmts.delServiceInstances.run(name);
      this.stmts.delService.run(name);
    })();
  }

  putInstance(i: StoredInstance): void {
    this.stmts.putInstance.run({
      name: i.name,
      service: i.service,
      desired: i.desired,
      state: i.state,
      pid: i.pid ?? null,
      start_time: i.startTime ?? null,
      restarts: i.restarts,
      contract_restarts: i.contractRestarts,
      reason: i.reason ?? null,
      updated_at: i.updatedAt,
    });
  }

  deleteInstance(name: string): void {
    this.stmts.delInstance.run(name);
  }

  setOwner(owner: StoreOwner | undefined): void {
    if (owner) this.stmts.putMeta.run('owner', JSON.stringify(owner));
    else this.stmts.delMeta.run('owner');
  }

  changedExternally(): boolean {
    return this.db.open && this.dataVersion() !== this.seenVersion;
  }

  flush(): void {
    // Each call above is already committed.
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private dataVersion(): number {
    // Changes only when another connection commits: our own writes never make the reconciler reload.
    return this.db.pragma('data_version', { simple: true }) as number;
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { invalid: what };
  }
}
