import { processIo } from './io.js';
import { runCli } from './program.js';

export interface MainOptions {
  /** Stop long-running commands on SIGINT, SIGTERM and SIGHUP (a second one forces). Default true. */
  handleSignals?: boolean;
}

/**
 * Runs `libipc` with `argv` (the arguments after the script) on this process's streams; resolves with the
 * exit code (0 ok, 1 failure, 2 usage). The bin calls it with process.argv.slice(2).
 */
export async function main(argv: readonly string[] = process.argv.slice(2), opts: MainOptions = {}): Promise<number> {
  const stop = new AbortController();
  const force = new AbortController();
  const io = processIo();
  const onSignal = (sig: NodeJS.Signals) => {
    if (!stop.signal.aborted) stop.abort(sig);
    else if (!force.signal.aborted) force.abort(sig);
  };
  // A reader that went away (`libipc run … | head`): stop as on Ctrl-C, and never die of EPIPE.
  const onPipeError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      if (!stop.signal.aborted) stop.abort('EPIPE');
      return;
    }
    throw err;
  };
  const handle = opts.handleSignals !== false;
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  if (handle) for (const s of signals) process.on(s, onSignal);
  process.stdout.on('error', onPipeError);
  try {
    return await runCli(argv, io, { signal: stop.signal, force: force.signal });
  } finally {
    if (handle) for (const s of signals) process.off(s, onSignal);
    process.stdout.off('error', onPipeError);
  }
}
