// The per-user daemon: one Manager on a persistent store, a control socket, the run record that lets
// `libipc ps`/`logs` find it, and the sweep of what crashes leave in /dev/shm.
import { closeSync, mkdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { ExistsError, NotFoundError, selfIdentity } from '@libipc/shm';
import { Manager, type ServiceSpec } from '@libipc/supervisor';
import { startedAtMs } from '../proc.js';
import { type RunRecord, listRuns, removeRunRecord, runtimeDir, writeRunRecord } from '../runs.js';
import { type StoreFile, openStoreFile } from '../store-file.js';
import { version } from '../version.js';
import { type DaemonContext, handlers, resurrect } from './handlers.js';
import { type DaemonHome, daemonHome, ensureHome } from './home.js';
import { ControlSocket, takeLock } from './server.js';
import { sweepShm } from './sweep.js';
import { UsageSampler } from './usage-sampler.js';

export interface DaemonOptions {
  env: NodeJS.ProcessEnv;
  /** Start what `libipc save` saved (the boot unit's `daemon --resurrect`). */
  resurrect?: boolean;
  /** Ends the daemon (SIGTERM, SIGINT): everything stopped but still wanted, so the next daemon starts it again. */
  signal: AbortSignal;
  log(line: string): void;
  /** A pipe on which to say READY once listening (the client that started this daemon waits on it). */
  readyFd?: number;
}

/** The fd on which a daemon started by a client says it is ready (the client passes a pipe there). */
export const READY_FD_ENV = 'LIBIPC_DAEMON_READY_FD';

/** Runs the daemon until it is killed (kill-daemon) or `signal` aborts. Resolves with 'already' when one runs. */
export async function runDaemon(o: DaemonOptions): Promise<'done' | 'already'> {
  const home = daemonHome(o.env);
  ensureHome(home, o.env);
  const lock = await takeLock(home.lockName);
  if (lock === 'taken') {
    o.log(`a libipc daemon already runs for ${home.dir}`);
    signalReady(o.readyFd, 'ALREADY');
    return 'already';
  }
  let store: StoreFile | undefined;
  let control: ControlSocket | undefined;
  const runDir = runtimeDir(o.env, true);
  const me = selfIdentity();
  let sweepTimer: NodeJS.Timeout | undefined;
  try {
    mkdirSync(home.logs, { recursive: true, mode: 0o700 });
    store = openStoreFile(home.store);
    const specs = new Map<string, ServiceSpec>();
    for (const { spec } of store.store.load().services) specs.set(spec.name, spec as ServiceSpec);
    let manager: Manager;
    try {
      manager = new Manager({ store: store.store, sinks: [store.history] });
    } catch (err) {
      if (err instanceof ExistsError) throw new ExistsError(`${home.store} is held by another manager (${err.message}); stop it, or set LIBIPC_HOME to another folder`);
      throw err;
    }
    manager.on('warning', (err: Error) => o.log(`warning: ${err.message}`));
    manager.on('history', (e: { type: string; name: string; pid?: number; reason?: string; exitCode?: number; signal?: string }) => {
      if (e.type === 'adopt') o.log(`adopted ${e.name} (pid ${e.pid}), left running by an earlier daemon`);
      else if (e.type === 'failed') o.log(`${e.name} failed: ${e.reason ?? 'no reason recorded'}`);
      else if (e.type === 'exit') o.log(`${e.name} (pid ${e.pid}) ${e.signal ? `killed by ${e.signal}` : `exited with code ${e.exitCode ?? 'unknown'}`}`);
    });
    const startedAt = Date.now();
    const sampler = new UsageSampler(
      () => manager.statusAll().flatMap((s) => (s.pid !== undefined ? [s.pid] : [])),
      {
        startedAt: (pid) => {
          const s = manager.statusAll().find((x) => x.pid === pid);
          return s?.startTime !== undefined ? startedAtMs(s.startTime) : undefined;
        },
      },
    );
    const done = new AbortController();
    const ctx: DaemonContext = {
      manager,
      specs,
      home,
      sampler,
      version,
      pid: process.pid,
      startedAt,
      log: o.log,
      exit: () => setImmediate(() => done.abort('kill-daemon')),
    };
    control = await ControlSocket.listen(
      home.socket,
      async (cmd, args) => {
        const h = Object.hasOwn(handlers, cmd) ? handlers[cmd] : undefined;
        if (!h) throw new NotFoundError(`the libipc daemon has no command '${cmd}'; known: ${Object.keys(handlers).join(', ')}`);
        return h(args, ctx);
      },
      o.log,
    );
    writeFileSync(home.pidFile, `${JSON.stringify({ pid: me.pid, startTime: String(me.startTime), version, socket: home.socket })}\n`, { mode: 0o600 });
    const record: RunRecord = { pid: me.pid, startTime: String(me.startTime), config: `libipc daemon (${home.dir})`, store: home.store, ephemeral: false, startedAt };
    // A daemon that died holding this store is over: this one took its services (and its place).
    for (const old of listRuns({ LIBIPC_RUNTIME_DIR: runDir })) if (!old.alive && old.store === home.store) removeRunRecord(runDir, old.pid);
    writeRunRecord(runDir, record);
    o.log(`libipc daemon ${version} (pid ${me.pid}) listening on ${home.socket}, store ${home.store}`);
    const sweepMs = Number(o.env.LIBIPC_SWEEP_MS ?? 60_000);
    const sweep = () => {
      try {
        for (const line of sweepShm()) o.log(line);
      } catch (err) {
        o.log(`sweep failed: ${(err as Error).message}`);
      }
    };
    if (sweepMs > 0) {
      sweep();
      sweepTimer = setInterval(sweep, Math.max(1000, sweepMs));
    }
    signalReady(o.readyFd);
    if (o.resurrect) {
      void resurrect({}, ctx).catch((err: Error) => o.log(`resurrect: ${err.message}`));
    }
    await new Promise<void>((resolve) => {
      if (o.signal.aborted || done.signal.aborted) return resolve();
      o.signal.addEventListener('abort', () => resolve(), { once: true });
      done.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    clearInterval(sweepTimer);
    sampler.stop();
    await control.close();
    control = undefined;
    // Stopped, dependents first; after SIGTERM still wanted (a new daemon starts them), after kill-daemon recorded stopped.
    await manager.shutdown().catch((err: Error) => o.log(`shutdown: ${err.message}`));
    o.log('libipc daemon stopped');
    return 'done';
  } finally {
    clearInterval(sweepTimer);
    await control?.close();
    store?.close();
    removeRunRecord(runDir, me.pid);
    rmSync(home.pidFile, { force: true });
    lock.release();
  }
}

/** Tells the client that started this daemon that it listens (or that another one does). */
function signalReady(fd: number | undefined, word = 'READY'): void {
  if (fd === undefined || !Number.isInteger(fd) || fd < 3) return;
  try {
    writeSync(fd, `${word}\n`);
    closeSync(fd);
  } catch {
    // the client went away
  }
}

export type { DaemonHome };
export { daemonHome };
