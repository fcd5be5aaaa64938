// Pure: the systemd unit that starts the daemon at boot (`libipc daemon --resurrect`), and where it goes.
import { join } from 'node:path';

export interface UnitOptions {
  /** A user unit (systemctl --user, started at login or at boot with lingering) or a system unit with User=. */
  scope: 'user' | 'system';
  /** node, the libipc bin: ExecStart runs `<node> <bin> daemon --resurrect`. */
  node: string;
  bin: string;
  home: string;
  /** The PATH services see (a unit's default PATH is minimal). */
  path: string;
  /** For a system unit: the account it runs as. */
  user?: string;
}

/** systemd's quoting of one word of a command line or of an Environment= assignment. */
export function quoteWord(word: string): string {
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(word)) return word;
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`;
}

export function unitName(scope: UnitOptions['scope'], user?: string): string {
  return scope === 'user' || !user ? 'libipc.service' : `libipc-${user}.service`;
}

/** The unit's text: a foreground daemon, stopped with kill-daemon (services stop dependents first). */
export function unitText(o: UnitOptions): string {
  const cmd = (...words: string[]) => words.map(quoteWord).join(' ');
  const lines = [
    '[Unit]',
    `Description=libipc daemon${o.scope === 'system' && o.user ? ` of ${o.user}` : ''}: services that outlive the terminal`,
    'Documentation=https://github.com/libipc/libipc-node/tree/main/packages/cli#readme',
    'After=network.target',
    '',
    '[Service]',
    'Type=simple',
    ...(o.scope === 'system' && o.user ? [`User=${o.user}`] : []),
    `Environment=${quoteWord(`LIBIPC_HOME=${o.home}`)}`,
    `Environment=${quoteWord(`PATH=${o.path}`)}`,
    `ExecStart=${cmd(o.node, o.bin, 'daemon', '--resurrect')}`,
    `ExecStop=${cmd(o.node, o.bin, 'kill-daemon')}`,
    // The services are the daemon's children but not part of its life: kill-daemon stops them in order.
    'KillMode=process',
    'Restart=on-failure',
    'RestartSec=2',
    'LimitNOFILE=65536',
    '',
    '[Install]',
    `WantedBy=${o.scope === 'user' ? 'default.target' : 'multi-user.target'}`,
    '',
  ];
  return lines.join('\n');
}

/** Where systemd looks for the unit. */
export function unitDir(scope: UnitOptions['scope'], env: NodeJS.ProcessEnv, home: string): string {
  if (scope === 'system') return '/etc/systemd/system';
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'systemd', 'user');
}
