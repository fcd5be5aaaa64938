import { stringify } from 'yaml';
import { type RegisterCommand, example } from '../command.js';
import { convertEcosystem } from '../config/load-config.js';
import { writeLine } from '../io.js';

/** `libipc convert <ecosystem file>`: a PM2 ecosystem file printed as the native YAML config. */
export const registerConvert: RegisterCommand = (program, ctx) => {
  program
    .command('convert')
    .description(
      'print a PM2 ecosystem file (ecosystem.config.js, .cjs, .mjs, .json, .yaml) as the native YAML config of libipc run/start; ' +
        'the PM2 fields it cannot map are named on stderr',
    )
    .argument('<file>', 'the ecosystem file')
    .addHelpText(
      'after',
      `${example('libipc convert ecosystem.config.js > libipc.yaml', 'libipc run libipc.yaml --env production')}\nPaths stay as the ecosystem file has them (relative to its folder): write the YAML beside it.\n`,
    )
    .action(async (file: string) => {
      const { io } = ctx;
      const { data, warnings } = await convertEcosystem(file, { cwd: io.cwd });
      for (const w of warnings) io.stderr.write(`libipc convert: ${w}\n`);
      writeLine(io.stdout, `# libipc config converted from ${file} by 'libipc convert'; run it with 'libipc run <this file>'.\n${stringify(asMap(data), { lineWidth: 0 })}`.trimEnd());
    });
};

/** Services as a map of name: service (the usual form) when every name is a distinct plain string. */
function asMap(data: Record<string, unknown>): Record<string, unknown> {
  const list = data.services as Array<Record<string, unknown>>;
  const names = list.map((s) => s.name);
  if (!names.every((n) => typeof n === 'string') || new Set(names).size !== names.length) return data;
  return { ...data, services: Object.fromEntries(list.map(({ name, ...rest }) => [name as string, rest])) };
}
