import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import type { CommandContext } from './command.js';
import { EXIT, errorLine, exitCodeOf } from './errors.js';
import type { Io } from './io.js';
import { colorsFor } from './output.js';
import { version } from './version.js';

/** The `libipc` program with every command of commands/ registered. */
export function buildProgram(ctx: CommandContext, hint: { command: string } = { command: 'libipc' }): Command {
  const { io } = ctx;
  const program = new Command('libipc')
    .description('See what runs on this machine, clean up what crashed, run services from a config file.')
    .version(version, '-V, --version')
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Commander's errors as one line that says what to do.
      outputError: (s, write) => write(`${oneLine(s, hint.command)}\n`),
    })
    .exitOverride();
  for (const register of commands) register(program, ctx);
  program.addHelpText('after', `\nExit codes: 0 ok, 1 failure, 2 usage. 'libipc <command> --help' shows a command's options and an example.\n`);
  return program;
}

function oneLine(s: string, command: string): string {
  const text = s.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
  return `${command}: ${text}; see '${command} --help'`.replace(/\.; see/, '; see');
}

/** The command a command line names ('libipc shm clean'), for the hint of a usage error. */
function commandOf(program: Command, argv: readonly string[]): string {
  const path = ['libipc'];
  let cmd = program;
  for (const word of argv) {
    if (word.startsWith('-')) break;
    const sub = cmd.commands.find((c) => c.name() === word);
    if (!sub) break;
    path.push(word);
    cmd = sub;
  }
  return path.join(' ');
}

/**
 * Runs the `libipc` command line `argv` (without node and the script) and resolves with its exit code:
 * 0 ok, 1 failure, 2 usage. Long-running commands (run, watch, logs --follow) end when `stop.signal` aborts;
 * `stop.force` (a second Ctrl-C) makes `run` kill what is still stopping.
 */
export async function runCli(argv: readonly string[], io: Io, stop: { signal: AbortSignal; force: AbortSignal }): Promise<number> {
  const ctx: CommandContext = { io, colors: colorsFor(io), exitCode: EXIT.ok, signal: stop.signal, force: stop.force };
  const hint = { command: 'libipc' };
  const program = buildProgram(ctx, hint);
  hint.command = commandOf(program, argv);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
      // Help shown because no command was given, or a command line commander refused: usage.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const name = program.args[0] && program.commands.some((c) => c.name() === program.args[0]) ? ` ${program.args[0]}` : '';
    io.stderr.write(`libipc${name}: ${errorLine(err)}\n`);
    return exitCodeOf(err);
  }
}
