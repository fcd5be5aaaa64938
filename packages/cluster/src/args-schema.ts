import { InvalidArgumentError } from '@libipc/shm';
import type { ArgsSchema, Launcher } from './types.js';

type Issues = ReadonlyArray<{ message?: unknown; path?: ReadonlyArray<unknown> }>;

function describe(issues: Issues): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      const path = (i.path ?? []).map((p) => (typeof p === 'object' && p !== null && 'key' in p ? String((p as { key: unknown }).key) : String(p))).join('.');
      return `${path ? `args.${path}: ` : ''}${String(i.message ?? 'invalid')}`;
    })
    .join('; ');
}

/** Whether `v` can serve as a launcher's argsSchema: a Standard Schema (zod, valibot, arktype…), a zod-like safeParse, or a function. */
export function isArgsSchema(v: unknown): v is ArgsSchema {
  if (typeof v === 'function') return true;
  if (typeof v !== 'object' || v === null) return false;
  const s = v as { '~standard'?: { validate?: unknown }; safeParse?: unknown };
  return typeof s['~standard']?.validate === 'function' || typeof s.safeParse === 'function';
}

/**
 * Checks a daemon's args against its launcher's argsSchema (none: anything JSON goes). Refuses with
 * ERR_LIBIPC_INVALID_ARGUMENT naming the launcher, the daemon and what the schema said.
 */
export async function checkArgs(launcherName: string, launcher: Launcher, processName: string, args: unknown[] | undefined): Promise<void> {
  const schema = launcher.argsSchema;
  if (schema === undefined) return;
  const value = args ?? [];
  let reason: string | undefined;
  try {
    if (typeof schema === 'function') {
      const ok = await schema(value);
      if (ok === false) reason = 'the schema function returned false';
      else if (typeof ok === 'string') reason = ok;
    } else if ('~standard' in schema && schema['~standard']) {
      const r = await schema['~standard'].validate(value);
      if (r.issues) reason = describe(r.issues);
    } else if ('safeParse' in schema && typeof schema.safeParse === 'function') {
      const r = schema.safeParse(value);
      if (!r.success) reason = describe((r.error as { issues?: Issues } | undefined)?.issues ?? [{ message: String(r.error) }]);
    }
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
  }
  if (reason !== undefined) {
    throw new InvalidArgumentError(`launcher '${launcherName}' refuses the args of '${processName}': ${reason.slice(0, 500)}`);
  }
}
