import { ServiceRegistry } from '@libipc/registry';
import { type RegisterCommand, example, nameArgument } from '../command.js';
import { domainsFor } from '../domains.js';
import { writeLine } from '../io.js';

/** `libipc gc`: removes registry entries of dead processes (the registry's own gc(), as one of its users). */
export const registerGc: RegisterCommand = (program, ctx) => {
  program
    .command('gc')
    .description('remove registry entries whose process is dead, and say how many')
    .option('-d, --domain <domain>', 'only this registry domain (default: every domain found)', nameArgument('domain'))
    .addHelpText('after', example('libipc gc', 'libipc gc --domain audio'))
    .action((o: { domain?: string }) => {
      let total = 0;
      for (const domain of domainsFor(o.domain)) {
        // Joins the domain for the call; closing it as the last user of an empty domain removes the segment.
        const registry = new ServiceRegistry(domain);
        let removed: number;
        try {
          removed = registry.gc();
        } finally {
          registry.close();
        }
        total += removed;
        writeLine(ctx.io.stdout, `removed ${removed} dead ${removed === 1 ? 'entry' : 'entries'} from domain ${domain}`);
      }
      if (o.domain === undefined) writeLine(ctx.io.stdout, `removed ${total} dead ${total === 1 ? 'entry' : 'entries'} in all`);
    });
};
