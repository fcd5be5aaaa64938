import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { IncompatibleError, InvalidArgumentError, SystemError, describeValue } from '@libipc/shm';
import { makeDir } from './log-file.js';
import { type Store, type StoreOwner, type StoreSnapshot, type StoredInstance, type StoredService, checkSnapshot } from './store.js';

const FORMAT = 'libipc-supervisor-store';
const VERSION = 1;

interface FileStamp {
  ino: number;
  size: number;
  mtimeMs: number;
}

/**
 * The zero-dependency store: one JSON file, rewritten whole (to a temporary file, then renamed over, so a
 * crash leaves the old or the new file, never half of one). Writes made in one turn of the event loop are
 * batched into one rewrite; `flush()` writes at once.
 */
export class JsonFileStore implements Store {
  readonly path: string;
  private services = new Map<string, StoredService>();
  private instances = new Map<string, StoredInstance>();
  private owner: StoreOwner | undefined;
  private pending: NodeJS.Immediate | undefined;
  private stamp: FileStamp | undefined;
  /** Each entry as the file last had it (read or written): tells our unsaved changes from someone else's. */
  private written = new Map<string, string>();
  /** A flush merged another process's edit in: the owner has not load()ed it yet (changedExternally() stays true). */
  private unseen = false;
  private closed = false;

  /** `path`: the JSON file (created on the first write when missing), or `{ path }`. */
  constructor(target: string | { path: string }) {
    const path = typeof target === 'object' && target !== null ? target.path : target;
    if (typeof path !== 'string' || path === '' || path.includes('\0')) {
      throw new InvalidArgumentError(`JsonFileStore path must be a non-empty string, got ${describeValue(path)}`);
    }
    this.path = path;
    this.read();
  }

  load(): StoreSnapshot {
    if (this.fileChanged()) this.read(true);
    this.unseen = false;
    return {
      owner: this.owner && { ...this.owner },
      services: [...this.services.values()].map((s) => structuredClone(s)),
      instances: [...this.instances.values()].map((i) => ({ ...i })),
    };
  }

  putService(service: StoredService): void {
    this.services.set(service.spec.name, structuredClone(service));
    this.schedule();
  }

  deleteService(name: string): void {
    this.services.delete(name);
    for (const [k, i] of this.instances) if (i.service === name) this.instances.delete(k);
    this.schedule();
  }

  putInstance(instance: StoredInstance): void {
    this.instances.set(instance.name, { ...instance });
    this.schedule();
  }

  deleteInstance(name: string): void {
    this.instances.delete(name);
    this.schedule();
  }

  setOwner(owner: StoreOwner | undefined): void {
    this.owner = owner && { ...owner };
    this.flush(true);
  }

  changedExternally(): boolean {
    return this.unseen || this.fileChanged();
  }

  /** The file is not as we last read or wrote it. */
  private fileChanged(): boolean {
    const now = this.statFile();
    if (now === undefined) return this.stamp !== undefined;
    return this.stamp === undefined || now.ino !== this.stamp.ino || now.size !== this.stamp.size || now.mtimeMs !== this.stamp.mtimeMs;
  }

  /** Writes now; `durable` also fsyncs (a crash of this process loses nothing either way: the rename is atomic). */
  flush(durable = false): void {
    if (this.pending) clearImmediate(this.pending);
    this.pending = undefined;
    if (this.closed) return;
    // Another process wrote the file since we last did: merge its edit in, never write over it (load() shows it).
    if (this.fileChanged()) {
      this.read(true);
      this.unseen = true;
      if (this.pending) clearImmediate(this.pending);
      this.pending = undefined;
    }
    const doc = {
      format: FORMAT,
      version: VERSION,
      owner: this.owner,
      services: [...this.services.values()],
      instances: [...this.instances.values()],
    };
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      makeDir(dirname(this.path));
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(doc, null, 1)}\n`);
        if (durable) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
      this.stamp = this.statFile();
      this.written = this.entries(this.services, this.instances, this.owner);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new SystemError(`cannot write the store ${this.path}: ${e.message}`, { errno: e.code ?? 'EIO', syscall: e.syscall ?? 'write', cause: err });
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush(true);
    this.closed = true;
  }

  private schedule(): void {
    if (this.closed) return;
    // Batched: one rewrite per turn of the event loop, whatever the number of changes.
    this.pending ??= setImmediate(() => {
      this.pending = undefined;
      try {
        this.flush();
      } catch {
        // Retried with the next change; flush() called directly reports the error.
      }
    });
  }

  private statFile(): FileStamp | undefined {
    try {
      const s = statSync(this.path);
      return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
    } catch {
      return undefined;
    }
  }

  private entries(services: Map<string, StoredService>, instances: Map<string, StoredInstance>, owner: StoreOwner | undefined): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of services) m.set(`s:${k}`, JSON.stringify(v));
    for (const [k, v] of instances) m.set(`i:${k}`, JSON.stringify(v));
    if (owner) m.set('owner', JSON.stringify(owner));
    return m;
  }

  /**
   * `merge`: the file changed under us while we may hold unsaved changes; an entry the file changed (or
   * removed) since we last saw it is taken from the file, every other entry keeps our version.
   */
  private read(merge = false): void {
    let text: string;
    let stamp: FileStamp | undefined;
    try {
      const fd = openSync(this.path, 'r');
      try {
        const s = fstatSync(fd);
        if (!s.isFile()) throw new IncompatibleError(`store ${this.path} is not a regular file`);
        stamp = { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
        text = readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.services.clear();
        this.instances.clear();
        this.owner = undefined;
        this.stamp = undefined;
        return;
      }
      if (err instanceof IncompatibleError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new SystemError(`cannot read the store ${this.path}: ${e.message}`, { errno: e.code ?? 'EIO', syscall: e.syscall ?? 'read', cause: err });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new IncompatibleError(`store ${this.path} is not valid JSON (${(err as Error).message}); move it away or repair it`);
    }
    const d = doc as { format?: unknown; version?: unknown };
    if (typeof doc !== 'object' || doc === null || d.format !== FORMAT) {
      throw new IncompatibleError(`${this.path} is not a libipc supervisor store (no "format": "${FORMAT}"); move it away or use another path`);
    }
    if (d.version !== VERSION) {
      throw new IncompatibleError(`store ${this.path} has version ${String(d.version)}; this @libipc/supervisor reads version ${VERSION}`);
    }
    const snap = checkSnapshot(doc, `store ${this.path}`);
    const services = new Map(snap.services.map((s) => [s.spec.name, s]));
    const instances = new Map(snap.instances.map((i) => [i.name, i]));
    const theirs = this.entries(services, instances, snap.owner);
    if (merge) {
      const pick = <T>(prefix: string, ours: Map<string, T>, file: Map<string, T>): Map<string, T> => {
        const out = new Map<string, T>();
        for (const k of new Set([...ours.keys(), ...file.keys()])) {
          const key = `${prefix}:${k}`;
          const changedThere = this.written.get(key) !== theirs.get(key);
          const v = changedThere ? file.get(k) : ours.get(k);
          if (v !== undefined) out.set(k, v);
        }
        return out;
      };
      this.services = pick('s', this.services, services);
      // An instance of a service the other process removed goes with it.
      this.instances = new Map([...pick('i', this.instances, instances)].filter(([, i]) => this.services.has(i.service)));
      if (this.written.get('owner') !== theirs.get('owner')) this.owner = snap.owner;
      if (JSON.stringify([...this.entries(this.services, this.instances, this.owner)]) !== JSON.stringify([...theirs])) this.schedule();
    } else {
      this.services = services;
      this.instances = instances;
      this.owner = snap.owner;
    }
    this.written = theirs;
    this.stamp = stamp;
  }
}
