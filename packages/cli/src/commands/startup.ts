import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { PermissionError, UnsupportedError } from '@libipc/shm';
import { type RegisterCommand, example } from '../command.js';
import { binPath } from '../daemon/client.js';
import { homeDir } from '../daemon/home.js';
import { type UnitOptions, unitDir, unitName, unitText } from '../daemon/systemd.js';
import { UsageError } from '../errors.js';
import { writeLine } from '../io.js';

interface StartupOptions {
  user?: boolean;
  system?: boolean;
  install?: boolean;
  unitDir?: string;
}

function scopeOf(o: StartupOptions): UnitOptions['scope'] {
  if (o.user && o.system) throw new UsageError('--user and --system exclude each other');
  if (o.user) return 'user';
  if (o.system) return 'system';
  return process.getuid?.() === 0 ? 'system' : 'user';
}

function checkPlatform(platform: string | undefined): void {
  if (platform !== undefined && platform !== 'systemd') throw new UnsupportedError(`startup knows systemd only, not '${platform}'; run 'libipc daemon --resurrect' from your init system`);
}

/** systemctl when it exists; what it said when it failed (not fatal: the unit file is written). */
function systemctl(scope: UnitOptions['scope'], args: string[]): string | undefined {
  try {
    execFileSync('systemctl', [...(scope === 'user' ? ['--user'] : []), ...args], { stdio: 'pipe', timeout: 30_000 });
    return undefined;
  } catch (err) {
    return (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
  }
}

/** `libipc startup [systemd]` / `libipc unstartup`: the boot unit that runs `libipc daemon --resurrect`. */
export const registerStartup: RegisterCommand = (program, ctx) => {
  program
    .command('startup')
    .description("print the systemd unit that starts the libipc daemon at boot with what 'libipc save' saved; --install writes and enables it")
    .argument('[platform]', 'the init system: systemd')
    .option('--user', 'a user unit (systemctl --user; at boot with loginctl enable-linger)')
    .option('--system', 'a system unit with User= (needs root to install; the default as root)')
    .option('--install', 'write the unit file and enable it (systemctl daemon-reload, enable)')
    .option('--unit-dir <dir>', 'install into this folder instead of systemd\'s (no systemctl then)')
    .addHelpText('after', example('libipc startup', 'libipc startup systemd --user --install', 'sudo libipc startup systemd --system --install'))
    .action((platform: string | undefined, o: StartupOptions) => {
      const { io } = ctx;
      checkPlatform(platform);
      const scope = scopeOf(o);
      const user = userInfo().username;
      const text = unitText({ scope, node: process.execPath, bin: binPath(io.env), home: homeDir(io.env), path: io.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', user });
      const name = unitName(scope, user);
      if (!o.install) {
        io.stdout.write(text);
        return;
      }
      const dir = o.unitDir !== undefined ? resolve(io.cwd, o.unitDir) : unitDir(scope, io.env, io.env.HOME || homedir());
      if (scope === 'system' && o.unitDir === undefined && process.getuid?.() !== 0) {
        throw new PermissionError(`installing a system unit needs root: run 'sudo ${process.execPath} ${binPath(io.env)} startup systemd --system --install', or use --user`);
      }
      mkdirSync(dir, { recursive: true });
      const file = join(dir, name);
      writeFileSync(file, text, { mode: 0o644 });
      writeLine(io.stdout, `wrote ${file}`);
      if (o.unitDir !== undefined) return;
      const failed = systemctl(scope, ['daemon-reload']) ?? systemctl(scope, ['enable', name]);
      if (failed) writeLine(io.stdout, `systemctl could not enable it (${failed}); run 'systemctl ${scope === 'user' ? '--user ' : ''}enable ${name}' yourself`);
      else writeLine(io.stdout, `enabled ${name}: the daemon starts at ${scope === 'user' ? 'login (boot with loginctl enable-linger)' : 'boot'} with what 'libipc save' saved`);
    });

  program
    .command('unstartup')
    .description("remove the boot unit of 'libipc startup' (disabled first)")
    .argument('[platform]', 'the init system: systemd')
    .option('--user', 'the user unit')
    .option('--system', 'the system unit')
    .option('--unit-dir <dir>', 'remove it from this folder instead of systemd\'s')
    .addHelpText('after', example('libipc unstartup', 'libipc unstartup systemd --user'))
    .action((platform: string | undefined, o: StartupOptions) => {
      const { io } = ctx;
      checkPlatform(platform);
      const scope = scopeOf(o);
      const name = unitName(scope, userInfo().username);
      const dir = o.unitDir !== undefined ? resolve(io.cwd, o.unitDir) : unitDir(scope, io.env, io.env.HOME || homedir());
      const file = join(dir, name);
      if (!existsSync(file)) {
        writeLine(io.stdout, `no ${file}: nothing to remove`);
        return;
      }
      if (o.unitDir === undefined) systemctl(scope, ['disable', name]);
      rmSync(file, { force: true });
      if (o.unitDir === undefined) systemctl(scope, ['daemon-reload']);
      writeLine(io.stdout, `removed ${file}`);
    });
};
