import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, resolve } from 'node:path';
import { describeValue, InvalidArgumentError, SpawnError } from '@libipc/shm';

type Check = 'ok' | 'missing' | 'directory' | 'not-executable';

function check(file: string): Check {
  let st;
  try {
    st = statSync(file);
  } catch {
    return 'missing';
  }
  if (st.isDirectory()) return 'directory';
  try {
    accessSync(file, constants.X_OK);
  } catch {
    return 'not-executable';
  }
  return 'ok';
}

/**
 * The absolute path the child will run, found like execvp does: a name with a '/' is a path (relative
 * to `cwd`), anything else is searched on PATH. Throws SpawnError naming the path when there is none.
 */
export function resolveExecutable(executable: string, pathEnv: string | undefined, cwd: string): string {
  if (typeof executable !== 'string' || executable.length === 0) {
    throw new SpawnError(`executable must be a non-empty path or command name, got ${describeValue(executable)}`);
  }
  if (pathEnv !== undefined && pathEnv !== null && typeof pathEnv !== 'string') {
    throw new InvalidArgumentError(`PATH must be a string of directories separated by ':', got ${describeValue(pathEnv)}`);
  }
  if (typeof cwd !== 'string' || cwd.length === 0) throw new InvalidArgumentError(`cwd must be a directory path, got ${describeValue(cwd)}`);
  if (executable.includes('/')) {
    const file = isAbsolute(executable) ? executable : resolve(cwd, executable);
    const result = check(file);
    if (result === 'ok') return file;
    throw new SpawnError(explain(executable, file, result));
  }
  const dirs = (pathEnv ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter);
  let notExecutable: string | undefined;
  for (const dir of dirs) {
    // An empty PATH entry means the current directory, as in execvp.
    const file = resolve(cwd, dir === '' ? '.' : dir, executable);
    const result = check(file);
    if (result === 'ok') return file;
    if (result === 'not-executable') notExecutable ??= file;
  }
  if (notExecutable) throw new SpawnError(explain(executable, notExecutable, 'not-executable'));
  throw new SpawnError(
    `cannot spawn ${JSON.stringify(executable)}: not found on PATH (${pathEnv ?? '<unset>'}); install it, fix PATH, or pass an absolute path`,
  );
}

function explain(executable: string, file: string, result: Check): string {
  switch (result) {
    case 'missing':
      return `cannot spawn ${JSON.stringify(executable)}: ${file} does not exist; check the path`;
    case 'directory':
      return `cannot spawn ${JSON.stringify(executable)}: ${file} is a directory, not an executable file`;
    default:
      return `cannot spawn ${JSON.stringify(executable)}: ${file} is not executable by this user; chmod +x it or run it through its interpreter`;
  }
}
