import { closeSync, openSync, readSync, statSync, watch } from 'node:fs';
import { lastLogLines, type LogStream, logPaths } from '@libipc/supervisor';
import { basename, dirname, join } from 'node:path';

// Reading the log files a supervisor writes (dir/<name>.stdout.log and .stderr.log, rotated to .1 … .keep),
// without a manager: the `libipc logs` side of @libipc/supervisor's logs option.

export type Stream = LogStream;

export function logFile(dir: string, name: string, stream: Stream): string {
  return logPaths(dir, name).file[stream];
}

/** The last `n` lines of a rotated log: the current file, then .1, .2, … while more are needed (the supervisor's reader). */
export function lastLines(path: string, n: number, keep = 1000): string[] {
  return lastLogLines(path, keep, n);
}

/** Lines of several logs merged by their ISO timestamp prefix (stable), keeping the last `n`. */
export function mergeByTime(sources: Array<{ label: string; lines: string[] }>, n: number): Array<{ label: string; line: string }> {
  const all = sources.flatMap((s, si) => s.lines.map((line, li) => ({ label: s.label, line, key: line.slice(0, 24), si, li })));
  all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.si - b.si || a.li - b.li));
  return all.slice(Math.max(0, all.length - n)).map(({ label, line }) => ({ label, line }));
}

/**
 * Calls `onLine` for every line appended to `files` from now on (fs.watch on their folder: no polling),
 * following a rotation (a file that shrank or was replaced is read again from its start). Returns a stop function.
 */
export function follow(files: Array<{ label: string; path: string }>, onLine: (label: string, line: string) => void): () => void {
  const state = new Map(files.map((f) => [f.path, { ...f, offset: sizeOf(f.path), ino: inoOf(f.path), rest: '' }]));
  const read = (path: string) => {
    const s = state.get(path);
    if (!s) return;
    const ino = inoOf(path);
    const size = sizeOf(path);
    if (ino !== s.ino || size < s.offset) {
      s.ino = ino;
      s.offset = 0;
    }
    if (size <= s.offset) return;
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(Math.min(size - s.offset, 16 * 1024 * 1024));
      const got = readSync(fd, buf, 0, buf.length, s.offset);
      s.offset += got;
      const text = s.rest + buf.toString('utf8', 0, got);
      const lines = text.split('\n');
      s.rest = lines.pop() ?? '';
      for (const l of lines) onLine(s.label, l);
    } finally {
      closeSync(fd);
    }
  };
  const watchers = [...new Set(files.map((f) => dirname(f.path)))].map((dir) =>
    watch(dir, (_event, file) => {
      if (file === null) {
        for (const p of state.keys()) read(p);
        return;
      }
      const p = join(dir, basename(String(file)));
      if (state.has(p)) read(p);
    }),
  );
  return () => {
    for (const w of watchers) w.close();
  };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function inoOf(path: string): number {
  try {
    return statSync(path).ino;
  } catch {
    return 0;
  }
}
