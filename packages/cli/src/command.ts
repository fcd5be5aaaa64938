import { type Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import type { Io } from './io.js';
import type { Colors } from './output.js';

/** What every command gets: where to write, colours, and where to leave its exit code. */
export interface CommandContext {
  io: Io;
  colors: Colors;
  /** The exit code the command settled on (0 unless it sets another). */
  exitCode: number;
  /** Aborted when the process is asked to stop (Ctrl-C, SIGTERM, a closed pipe): long-running commands end. */
  signal: AbortSignal;
  /** Aborted on a second Ctrl-C: `run` kills what is still stopping. */
  force: AbortSignal;
}

/** One command (one file under commands/): adds itself, with its options, help and example, to the program. */
export type RegisterCommand = (program: Command, ctx: CommandContext) => void;

/** The help text's example section. */
export function example(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/** An option argument that must be a whole number in [min, max] (a bad one is a usage error, exit 2). */
export function intArgument(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new CommanderArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** A --domain argument: a registry domain name, 1-63 of [A-Za-z0-9._-]. */
export function nameArgument(what: string): (value: string) => string {
  return (value) => {
    if (!/^[A-Za-z0-9._-]{1,63}$/.test(value)) throw new CommanderArgumentError(`${what} must be 1-63 characters from [A-Za-z0-9._-]`);
    return value;
  };
}

/**
 * Resolves when `signal` aborts (Ctrl-C, SIGTERM, a closed pipe). It holds the event loop open meanwhile:
 * what a command waits on (adopted processes' pidfds, say) may not.
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const hold = setInterval(() => {}, 1 << 30);
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(hold);
        resolve();
      },
      { once: true },
    );
  });
}
