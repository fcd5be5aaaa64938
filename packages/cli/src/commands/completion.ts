import { type Command, type Option } from 'commander';
import { type RegisterCommand, example } from '../command.js';
import { UsageError } from '../errors.js';

/** `libipc completion bash|zsh`: a completion script made from the program's own commands and options. */
export const registerCompletion: RegisterCommand = (program, ctx) => {
  program
    .command('completion')
    .description('print a shell completion script (bash or zsh)')
    .argument('<shell>', 'bash or zsh')
    .addHelpText('after', example('source <(libipc completion bash)', 'libipc completion zsh > "${fpath[1]}/_libipc"'))
    .action((shell: string) => {
      const tree = describe(program);
      if (shell === 'bash') ctx.io.stdout.write(bash(tree));
      else if (shell === 'zsh') ctx.io.stdout.write(zsh(tree));
      else throw new UsageError(`unknown shell '${shell}'; use 'bash' or 'zsh'`);
    });
};

interface Node {
  path: string[];
  subcommands: string[];
  options: string[];
  /** Options that take a value, and how to complete it ('domain', 'file', 'shell', or nothing). */
  values: Record<string, string>;
}

function describe(program: Command): Node[] {
  const out: Node[] = [];
  const walk = (cmd: Command, path: string[]) => {
    const options = cmd.options.flatMap((o: Option) => [o.long, o.short].filter((x): x is string => !!x));
    const values: Record<string, string> = {};
    for (const o of cmd.options) {
      if (!o.required && !o.optional) continue;
      const kind = o.long === '--domain' ? 'domain' : o.long === '--store' || o.long === '--dir' ? 'file' : '';
      for (const flag of [o.long, o.short]) if (flag) values[flag] = kind;
    }
    out.push({ path, subcommands: cmd.commands.map((c) => c.name()), options: [...options, '--help'], values });
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
  return out;
}

const DOMAINS = "ls /dev/shm 2>/dev/null | sed -n 's/^libipc\\.registry\\.//p'";

function bash(tree: Node[]): string {
  const cases = tree
    .map((n) => {
      const key = n.path.join(' ');
      const words = [...n.subcommands, ...n.options].join(' ');
      const values = Object.entries(n.values)
        .map(([flag, kind]) => `        ${flag}) ${kind === 'domain' ? `COMPREPLY=( $(compgen -W "$(${DOMAINS})" -- "$cur") )` : kind === 'file' ? 'COMPREPLY=( $(compgen -f -- "$cur") )' : 'COMPREPLY=()'}; return ;;`)
        .join('\n');
      const extra = key === 'completion' ? 'bash zsh ' : key === 'run' ? '' : '';
      const files = key === 'run' ? '\n      COMPREPLY+=( $(compgen -f -- "$cur") )' : '';
      return `    "${key}")\n      case "$prev" in\n${values}\n      esac\n      COMPREPLY=( $(compgen -W "${extra}${words}" -- "$cur") )${files}\n      ;;`;
    })
    .join('\n');
  return `# bash completion for libipc: source <(libipc completion bash)
_libipc() {
  local cur prev path w
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  path=""
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in
      -*) ;;
      *) if [ -z "$path" ]; then path="$w"; else case "$path" in shm) path="$path $w";; esac; fi ;;
    esac
  done
  case "$path" in
${cases}
    *) COMPREPLY=() ;;
  esac
}
complete -F _libipc libipc
`;
}

function zsh(tree: Node[]): string {
  const cases = tree
    .map((n) => {
      const key = n.path.join(' ');
      const words = [...(key === 'completion' ? ['bash', 'zsh'] : []), ...n.subcommands, ...n.options].join(' ');
      const domainFlags = Object.entries(n.values).filter(([, k]) => k === 'domain').map(([f]) => f);
      const fileFlags = Object.entries(n.values).filter(([, k]) => k === 'file').map(([f]) => f);
      const lines = [
        domainFlags.length ? `      if [[ "$prev" == (${domainFlags.join('|')}) ]]; then compadd -- $(${DOMAINS}); return; fi` : '',
        fileFlags.length ? `      if [[ "$prev" == (${fileFlags.join('|')}) ]]; then _files; return; fi` : '',
        `      compadd -- ${words}`,
        key === 'run' ? '      _files' : '',
      ].filter(Boolean);
      return `    "${key}")\n${lines.join('\n')}\n      ;;`;
    })
    .join('\n');
  return `#compdef libipc
# zsh completion for libipc: libipc completion zsh > "\${fpath[1]}/_libipc" (or: source <(libipc completion zsh))
_libipc() {
  local prev="\${words[CURRENT-1]}" path="" w
  for w in "\${(@)words[2,CURRENT-1]}"; do
    [[ "$w" == -* ]] && continue
    if [[ -z "$path" ]]; then path="$w"; elif [[ "$path" == shm ]]; then path="$path $w"; fi
  done
  case "$path" in
${cases}
  esac
}
if [[ "$funcstack[1]" == "_libipc" ]]; then _libipc "$@"; else compdef _libipc libipc; fi
`;
}
