import type { RegisterCommand } from '../command.js';
import { registerCompletion } from './completion.js';
import { registerControl } from './control.js';
import { registerConvert } from './convert.js';
import { registerDaemon } from './daemon.js';
import { registerDashboard } from './dashboard.js';
import { registerGc } from './gc.js';
import { registerLogs } from './logs.js';
import { registerLs } from './ls.js';
import { registerPs } from './ps.js';
import { registerReload } from './reload.js';
import { registerRun } from './run.js';
import { registerSave } from './save.js';
import { registerShm } from './shm.js';
import { registerStart } from './start.js';
import { registerStartup } from './startup.js';
import { registerWatch } from './watch.js';

/** Every command of `libipc`, in the order `libipc --help` lists them. A new command is one file and one line here. */
export const commands: RegisterCommand[] = [
  registerLs,
  registerGc,
  registerWatch,
  registerShm,
  registerRun,
  registerConvert,
  registerPs,
  registerLogs,
  registerDashboard,
  // The daemon: services that outlive the terminal.
  registerStart,
  registerControl,
  registerReload,
  registerSave,
  registerStartup,
  registerDaemon,
  registerCompletion,
];
