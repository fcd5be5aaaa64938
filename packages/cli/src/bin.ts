import { main } from './main.js';

// Exit as soon as the command is done: its handles are closed, and Linux writes to pipes and terminals are synchronous.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`libipc: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
