// API fuzzing shared by every package's test/api-fuzz.test.ts: every exported function, class, static and
// instance method is called with combinations of edge values; each call must succeed or fail with a LibipcError
// whose code is ERR_LIBIPC_* — never another error, never a crash — within a bound (a promise still pending
// after it counts as a legitimate wait: it is settled later by closing what it waits on).
import { readdirSync, rmSync } from 'node:fs';

export interface FuzzReport {
  calls: number;
  coded: number;
  succeeded: number;
  waiting: number;
  /** Calls that threw something other than a coded LibipcError: what, with which arguments. */
  uncoded: string[];
}

/** A unique, valid name for this run: objects it creates are removed at the end. */
export function fuzzName(): string {
  return `fz${process.pid}`;
}

export function edgeValues(name = fuzzName()): unknown[] {
  return [
    undefined, null, 0, -1, 1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, 1e300, -0,
    '', name, 'a'.repeat(64), 'a/b', 'x'.repeat(100_000), ' ', '..',
    {}, [], [1, 'x'], () => undefined, Symbol('s'), 10n, true, false,
    new Uint8Array(4), Buffer.from('x'), new ArrayBuffer(8),
    { timeoutMs: -1 }, { timeoutMs: 'x' }, { signal: 'x' }, { unknownOption: 1 }, { capacity: null, mode: 7 },
    Object.create(null), new Date(0), /x/, new Error('e'), Promise.resolve(1),
  ];
}

function describe(v: unknown): string {
  if (typeof v === 'string') return v.length > 20 ? `string(${v.length})` : JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return 'symbol';
  if (typeof v === 'function') return 'function';
  if (v instanceof Uint8Array) return 'Uint8Array';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** Deterministic pseudo-random numbers (so a failure is reproducible). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BOUND_MS = 300;

export interface FuzzOptions {
  /** Calls per function or method. */
  perTarget?: number;
  /** Names (export or `Class.method`/`Class#method`) not to call, with the reason. */
  skip?: Record<string, string>;
  /** Valid instances whose methods are fuzzed too, by class name. */
  instances?: Record<string, () => unknown>;
  /** Arguments always passed first to a target (e.g. a valid handle), by target name. */
  leading?: Record<string, () => unknown[]>;
  seed?: number;
}

/**
 * Fuzzes a module's exports. Objects the calls return that have close()/leave()/stop() are closed at the end,
 * and /dev/shm objects carrying fuzzName() are removed.
 */
export async function fuzzExports(mod: Record<string, unknown>, opts: FuzzOptions = {}): Promise<FuzzReport> {
  const report: FuzzReport = { calls: 0, coded: 0, succeeded: 0, waiting: 0, uncoded: [] };
  const rnd = random(opts.seed ?? 1234);
  const values = edgeValues();
  const pick = () => values[Math.floor(rnd() * values.length)];
  const perTarget = opts.perTarget ?? 60;
  const skip = opts.skip ?? {};
  const made: unknown[] = [];
  const pending: Promise<unknown>[] = [];

  const judge = (what: string, args: unknown[], err: unknown) => {
    const code = (err as { code?: unknown })?.code;
    if (err instanceof Error && typeof code === 'string' && code.startsWith('ERR_LIBIPC_')) {
      report.coded++;
    } else {
      report.uncoded.push(`${what}(${args.map(describe).join(', ')}) → ${err instanceof Error ? `${err.name}: ${err.message.slice(0, 160)}` : describe(err)}`);
    }
  };

  const call = async (what: string, fn: (...a: unknown[]) => unknown, argc: number, lead: unknown[] = []) => {
    for (let i = 0; i < perTarget; i++) {
      const n = Math.floor(rnd() * (argc + 2));
      const args = [...lead, ...Array.from({ length: n }, pick)];
      report.calls++;
      let result: unknown;
      try {
        result = fn(...args);
      } catch (err) {
        judge(what, args, err);
        continue;
      }
      if (result instanceof Promise) {
        let settled = false;
        const watched = result.then(
          (v) => {
            settled = true;
            made.push(v);
            report.succeeded++;
          },
          (err) => {
            settled = true;
            judge(what, args, err);
          },
        );
        await Promise.race([watched, new Promise((r) => setTimeout(r, BOUND_MS))]);
        if (!settled) {
          report.waiting++;
          pending.push(watched);
        }
      } else {
        made.push(result);
        report.succeeded++;
      }
    }
  };

  const fuzzObject = async (label: string, obj: object) => {
    const proto = Object.getPrototypeOf(obj) as object;
    for (const key of Object.getOwnPropertyNames(proto)) {
      const what = `${label}#${key}`;
      if (key === 'constructor' || skip[what] || ['close', 'leave', 'stop', 'shutdown'].includes(key)) continue;
      const desc = Object.getOwnPropertyDescriptor(proto, key);
      if (typeof desc?.value !== 'function') continue;
      await call(what, (desc.value as (...a: unknown[]) => unknown).bind(obj), (desc.value as () => void).length);
    }
  };

  for (const [name, value] of Object.entries(mod)) {
    if (skip[name]) continue;
    if (typeof value !== 'function') continue;
    const isClass = /^class\b/.test(Function.prototype.toString.call(value));
    const lead = opts.leading?.[name]?.() ?? [];
    if (isClass) {
      const Cls = value as new (...a: unknown[]) => unknown;
      await call(`new ${name}`, (...a) => new Cls(...a), Cls.length, lead);
      for (const key of Object.getOwnPropertyNames(Cls)) {
        const what = `${name}.${key}`;
        if (['length', 'name', 'prototype'].includes(key) || skip[what]) continue;
        const member = (Cls as unknown as Record<string, unknown>)[key];
        if (typeof member === 'function') await call(what, (member as (...a: unknown[]) => unknown).bind(Cls), (member as () => void).length);
      }
      const make = opts.instances?.[name];
      if (make) {
        const obj = make() as object;
        made.push(obj);
        await fuzzObject(name, obj);
      }
    } else {
      await call(name, value as (...a: unknown[]) => unknown, (value as () => void).length, lead);
    }
  }

  // Close what the calls made (closing settles the waits pending on it), then remove what they left.
  for (const obj of made) {
    for (const m of ['leave', 'close', 'stop']) {
      const f = (obj as Record<string, unknown> | null | undefined)?.[m];
      if (typeof f === 'function') {
        try {
          await (f as () => unknown).call(obj);
        } catch {
          // closing a handle the fuzzer corrupted may fail; the leftovers are removed below
        }
        break;
      }
    }
  }
  await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, 5_000))]);
  for (const f of readdirSync('/dev/shm')) if (f.includes(fuzzName())) rmSync(`/dev/shm/${f}`, { force: true });
  return report;
}
