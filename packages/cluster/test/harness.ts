// Test harness: cluster nodes as separate processes (test/fixtures/node.mjs), driven by JSON commands on
// stdin and observed through the lines they print. Every node started in a test is killed and reaped after it.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterEach } from 'vitest';
import { uniqueName } from '../../../test/helpers.js';

const NODE_FIXTURE = fileURLToPath(new URL('./fixtures/node.mjs', import.meta.url));

export interface NodeProc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first line at index ≥ `from` that satisfies `match` (a prefix or a predicate). */
  line(match: string | ((l: string) => boolean), opts?: { from?: number; timeoutMs?: number }): Promise<string>;
  /** Lines so far that satisfy `match`, from index `from`. */
  matching(match: string | ((l: string) => boolean), from?: number): string[];
  /** Sends a command; resolves with its value, rejects with { code, message } on failure. */
  call<T = unknown>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const started: NodeProc[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => (n.child.kill('SIGCONT'), n.kill())));
});

let seq = 0;

/** ttl, daemons listed by recover(), recovery interval; env (ETCD_CACERT…, DAEMON_LOG), more join options. */
export interface NodeOptions {
  ttl?: number;
  daemons?: number;
  intervalMs?: number;
  env?: Record<string, string>;
  options?: Record<string, unknown>;
  /** startCluster: the cluster's name (default a unique one). */
  cluster?: string;
}

export function startNode(
  endpoint: string,
  cluster: string,
  name: string,
  opts: NodeOptions = {},
): NodeProc {
  const args = [NODE_FIXTURE, endpoint, cluster, name, String(opts.ttl ?? 2), String(opts.daemons ?? 0)];
  if (opts.intervalMs) args.push(String(opts.intervalMs));
  const env = { ...process.env, ...opts.env, ...(opts.options ? { CLUSTER_NODE_OPTS: JSON.stringify(opts.options) } : {}) };
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'], env });
  const lines: string[] = [];
  const waiters = new Set<{ test: (l: string) => boolean; from: number; resolve: (l: string) => void }>();
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of [...waiters]) {
      if (w.test(l)) {
        waiters.delete(w);
        w.resolve(l);
      }
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal })) as NodeProc['exited'];
  const toTest = (match: string | ((l: string) => boolean)) => (typeof match === 'string' ? (l: string) => l.startsWith(match) : match);
  const proc: NodeProc = {
    name,
    child,
    lines,
    exited,
    matching(match, from = 0) {
      return lines.slice(from).filter(toTest(match));
    },
    line(match, { from = 0, timeoutMs = 20_000 } = {}) {
      const test = toTest(match);
      const seen = lines.slice(from).find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { test, from, resolve: (l: string) => (clearTimeout(timer), resolve(l)) };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`node ${name}: no line matching ${String(match)} within ${timeoutMs} ms; lines:\n${lines.join('\n')}`));
        }, timeoutMs);
        waiters.add(w);
        void exited.then(({ code, signal }) => {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          clearTimeout(timer);
          reject(new Error(`node ${name} exited (${code ?? signal}) before a line matching ${String(match)}; lines:\n${lines.join('\n')}`));
        });
      });
    },
    async call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 20_000): Promise<T> {
      const id = ++seq;
      child.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
      const line = await proc.line(`reply ${id} `, { timeoutMs });
      const r = JSON.parse(line.slice(`reply ${id} `.length)) as { ok: boolean; value?: T; code?: string; message?: string };
      if (!r.ok) throw Object.assign(new Error(r.message), { code: r.code });
      return r.value as T;
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  started.push(proc);
  return proc;
}

/** Starts `names.length` nodes one after another (each joined before the next starts). */
export async function startCluster(
  endpoint: string,
  names: string[],
  opts: NodeOptions = {},
): Promise<{ cluster: string; nodes: NodeProc[] }> {
  const cluster = opts.cluster ?? uniqueName('c');
  const nodes: NodeProc[] = [];
  for (const name of names) {
    const n = startNode(endpoint, cluster, name, opts);
    await n.line('joined ');
    nodes.push(n);
  }
  return { cluster, nodes };
}

/** `spawn <name>` lines of every node, as [node, name] pairs, from per-node line offsets. */
export function spawns(nodes: NodeProc[], from: Map<NodeProc, number> = new Map()): Array<[string, string]> {
  return nodes.flatMap((n) => n.matching('spawn ', from.get(n) ?? 0).map((l) => [n.name, l.slice('spawn '.length)] as [string, string]));
}

/** Current line counts, to look only at what nodes print from now on. */
export function marks(nodes: NodeProc[]): Map<NodeProc, number> {
  return new Map(nodes.map((n) => [n, n.lines.length]));
}

/** Resolves when `done()` holds, checked on every line any of the nodes prints. */
export function until(nodes: NodeProc[], done: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not ${what} within ${timeoutMs} ms; lines:\n${nodes.map((n) => `--- ${n.name}\n${n.lines.join('\n')}`).join('\n')}`));
    }, timeoutMs);
    const check = () => {
      if (done()) {
        cleanup();
        resolve();
      }
    };
    // Woken by each chunk any node prints; the harness's own reader has pushed its lines already.
    const onData = () => setImmediate(check);
    for (const n of nodes) n.child.stdout!.on('data', onData);
    const cleanup = () => {
      clearTimeout(timer);
      for (const n of nodes) n.child.stdout!.off('data', onData);
    };
  });
}
