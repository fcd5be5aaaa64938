import { InvalidArgumentError, LibipcError } from '@libipc/shm';

/** The exit codes of every command: 0 ok, 1 failure, 2 usage (the command line itself is wrong). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** The command line is wrong (an unknown flag, a missing or bad argument): exit code 2. */
export class UsageError extends InvalidArgumentError {
  readonly exitCode = EXIT.usage;
}

/** A config file that cannot be used: the message names the file, line and field. Exit code 1. */
export class ConfigError extends InvalidArgumentError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly field: string | undefined,
    detail: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${field ? `${field}: ` : ''}${detail}`);
  }
}

/** An error as the one line a command prints: what happened, what to do, and its code. */
export function errorLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const oneLine = message.replace(/\s*\n\s*/g, ' ').trim();
  return err instanceof LibipcError ? `${oneLine} (${err.code})` : oneLine;
}

export function exitCodeOf(err: unknown): number {
  return err instanceof UsageError ? EXIT.usage : EXIT.failure;
}
