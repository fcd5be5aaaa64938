import type { z } from 'zod';

/** One request line of a control socket (the run's, the daemon's): parsed and checked, or why not (with its id). */
export function parseJsonLine<S extends z.ZodType>(line: string, schema: S): { ok: true; request: z.infer<S> } | { ok: false; id: number; message: string } {
  let data: unknown;
  try {
    data = JSON.parse(line);
  } catch {
    return { ok: false, id: 0, message: 'a request is one line of JSON' };
  }
  const r = schema.safeParse(data);
  if (!r.success) {
    const raw = (data as { id?: unknown } | null)?.id;
    const id = typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 2 ** 31 ? raw : 0;
    const issue = r.error.issues[0];
    return { ok: false, id, message: `bad request: ${issue?.path.join('.') || 'request'}: ${issue?.message ?? 'invalid'}` };
  }
  return { ok: true, request: r.data };
}
