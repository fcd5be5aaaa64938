import { isAbsolute, relative, sep } from 'node:path';
import { LibipcError, NoSpaceError, SystemError } from '@libipc/shm';
import picomatch from 'picomatch';

/**
 * The `watch` trigger's rules, pure: which paths are ignored, when a burst of changes is over (debounce), what
 * the restart says, and what a watcher's error means. The watcher itself lives in triggers.ts.
 */

/** Ignored in every watch (as PM2 does), besides the service's log folder and the manager's own files. */
export const DEFAULT_WATCH_IGNORES: readonly string[] = ['node_modules', '.git'];
/** A burst that never pauses still restarts after this many debounce periods (at least 5 s). */
const MAX_WAIT_FACTOR = 10;
const MIN_MAX_WAIT_MS = 5000;
/** Paths named in one restart's reason; the rest are counted. */
const PATHS_SHOWN = 3;

/**
 * Whether an absolute path is ignored. A pattern without '/' (`node_modules`, `*.log`) matches any path
 * segment; one with '/' matches the path relative to its watched root (`src/gen/**`); an absolute one matches
 * the absolute path. Ignoring a folder ignores everything under it.
 */
export function ignoreMatcher(roots: readonly string[], patterns: readonly string[]): (path: string) => boolean {
  const bySegment: Array<(s: string) => boolean> = [];
  const byRelative: Array<(s: string) => boolean> = [];
  const byAbsolute: Array<(s: string) => boolean> = [];
  for (const p of patterns) {
    const m = picomatch(p, { dot: true });
    if (isAbsolute(p)) byAbsolute.push(m);
    else if (p.includes('/')) byRelative.push(m);
    else bySegment.push(m);
  }
  return (path) => {
    const parts = path.split(sep).filter((s) => s !== '');
    for (let i = 1; i <= parts.length; i++) {
      const prefix = `/${parts.slice(0, i).join('/')}`;
      if (byAbsolute.some((m) => m(prefix))) return true;
    }
    const root = roots.find((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
    // Segments under the root only: a watched folder inside .../node_modules/... is still watched.
    const rel = root === undefined ? parts.join('/') : relative(root, path).split(sep).join('/');
    if (rel === '') return false;
    const relParts = rel.split('/');
    for (let i = 1; i <= relParts.length; i++) {
      if (bySegment.some((m) => m(relParts[i - 1]!))) return true;
      if (byRelative.some((m) => m(relParts.slice(0, i).join('/')))) return true;
    }
    return false;
  };
}

/** The patterns a service's watch ignores: the defaults, its log folder, the manager's own files, its own list. */
export function watchIgnores(own: readonly string[] | undefined, logDir: string | undefined, managerFiles: readonly string[]): string[] {
  const out = [...DEFAULT_WATCH_IGNORES];
  if (logDir !== undefined) out.push(escapeGlob(logDir));
  for (const f of managerFiles) out.push(`${escapeGlob(f)}*`); // the file and its -wal, -journal, .tmp
  out.push(...(own ?? []));
  return out;
}

function escapeGlob(path: string): string {
  return path.replace(/[*?[\]{}()!+@]/g, '\\$&');
}

/** Changes seen since the last restart, not yet acted on. */
export interface PendingChanges {
  firstAt: number;
  lastAt: number;
  paths: string[];
  count: number;
}

export function addChange(p: PendingChanges | undefined, path: string, now: number): PendingChanges {
  if (!p) return { firstAt: now, lastAt: now, paths: [path], count: 1 };
  const known = p.paths.includes(path);
  return {
    firstAt: p.firstAt,
    lastAt: now,
    paths: known || p.paths.length >= PATHS_SHOWN ? p.paths : [...p.paths, path],
    count: known ? p.count : p.count + 1,
  };
}

/** How long to wait before restarting (<= 0: now): `debounceMs` after the last change, or at most 10 periods after the first. */
export function debounceDelay(p: PendingChanges, debounceMs: number, now: number): number {
  const quietAt = p.lastAt + debounceMs;
  const latest = p.firstAt + Math.max(MIN_MAX_WAIT_MS, debounceMs * MAX_WAIT_FACTOR);
  return Math.min(quietAt, latest) - now;
}

/** "watch: src/a.js changed", "watch: src/a.js, b.js and 3 more changed" (paths relative to the first root holding them). */
export function describeChanges(p: PendingChanges, roots: readonly string[]): string {
  const shown = p.paths.map((path) => {
    const root = roots.find((r) => path === r || path.startsWith(r + sep));
    const rel = root === undefined || root === path ? path : relative(root, path);
    return rel;
  });
  const more = p.count - shown.length;
  return `watch: ${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''} changed`;
}

/** A watcher's error as a coded error; running out of inotify watches or descriptors names the sysctl that raises it. */
export function watchError(err: unknown, service: string): LibipcError {
  const e = err as NodeJS.ErrnoException;
  const what = `watch of ${service}`;
  if (e?.code === 'ENOSPC') {
    return new NoSpaceError(
      `${what}: the system ran out of inotify watches (ENOSPC); raise them with 'sysctl fs.inotify.max_user_watches=524288', or watch fewer paths (add ignore globs); ${service} keeps running without restarts on change`,
    );
  }
  if (e?.code === 'EMFILE') {
    return new SystemError(
      `${what}: too many inotify instances or open files (EMFILE); raise them with 'sysctl fs.inotify.max_user_instances=1024' (and 'sysctl fs.inotify.max_user_watches=524288'), or 'ulimit -n'; ${service} keeps running without restarts on change`,
      { errno: 'EMFILE', syscall: e.syscall ?? 'inotify_add_watch', cause: err },
    );
  }
  if (err instanceof LibipcError) return err;
  return new SystemError(`${what}: ${e?.message ?? String(err)}; ${service} keeps running without restarts on change`, {
    errno: e?.code ?? 'EIO',
    syscall: e?.syscall ?? 'watch',
    cause: err,
  });
}
