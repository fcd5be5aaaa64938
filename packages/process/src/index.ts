export type { ExitStatus } from './exit-status.js';
export { spawn, READY_FD_ENV, type ProcessHandle, type SpawnOptions } from './spawn.js';
export { requestShutdown, forceKill, waitForExit, shutdown } from './shutdown.js';
export { ready, waitForReady } from './ready.js';
export { spawnAndWait, type SpawnAndWaitOptions, type RegistryView, type RegisteredEntry } from './spawn-and-wait.js';
export { DEFAULT_RESTART_POLICY, type RestartPolicy } from './restart-policy.js';
export type { BackoffSpec } from './backoff.js';
export { TRANSITIONS, type ProcessState, type Transition } from './state-machine.js';
export { ManagedProcess, type ManagedProcessSpec, type ManagedProcessStatus, type Readiness } from './managed-process.js';
