// The daemon's wire format: one JSON object per line each way. A request names a command of the handler table.
import { z } from 'zod';
import { parseJsonLine } from '../json-line.js';

/** Requests larger than this are refused (a config of many services fits easily). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export interface DaemonRequest {
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}

export type DaemonReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; code: string; message: string };

const requestSchema = z.strictObject({
  id: z.number().int().min(0).max(2 ** 31),
  cmd: z.string().regex(/^[a-z][a-z-]{0,31}$/),
  args: z.record(z.string(), z.unknown()).default({}),
});

/** A request line, or why it is not one (the reply's message). */
export function parseRequest(line: string): { ok: true; request: DaemonRequest } | { ok: false; id: number; message: string } {
  return parseJsonLine(line, requestSchema) as { ok: true; request: DaemonRequest } | { ok: false; id: number; message: string };
}

/** Splits a stream of chunks into lines; calls `onOverflow` when a line grows past `max` bytes. */
export function lineSplitter(onLine: (line: string) => void, onOverflow: () => void, max = MAX_REQUEST_BYTES): (chunk: string) => void {
  let buffered = '';
  return (chunk) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      onLine(line);
    }
    if (buffered.length > max) {
      buffered = '';
      onOverflow();
    }
  };
}
