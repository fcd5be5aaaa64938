export { Manager, DEFAULT_RECONCILE_MS, type ManagerOptions, type LogsOptions } from './manager.js';
export type { ServiceSpec, Readiness, LogsSpec, WatchSpec } from './spec.js';
export type { ServiceStatus, LastExit, RestartTrigger } from './unit.js';
export { ReloadError, type ReloadOptions, type ReloadReport, type ReplacedInstance } from './reload.js';
export { LISTEN_FDS_ENV } from './listen-sockets.js';
export { TRANSITIONS, type ServiceState, type StateChange } from './states.js';
export { DependencyGraph } from './dependency-graph.js';
export type { Store, StoreSnapshot, StoredService, StoredInstance, StoreOwner } from './store.js';
export { JsonFileStore, JsonFileStore as JsonStore } from './json-store.js';
export { JsonlHistorySink, JsonlHistorySink as JsonlSink, type HistorySink, type HistoryEvent, type HistoryEventType } from './history.js';
export { LogReader, logPaths, lastLines as lastLogLines, type LogStream } from './logs.js';
export { namePattern } from './pattern.js';
export { nextCronFire } from './cron-schedule.js';
export { ENV } from './environment.js';
export {
  LibipcError,
  CycleError,
  ExistsError,
  NotFoundError,
  InvalidArgumentError,
  InvalidNameError,
  IllegalStateError,
  TimeoutError,
  SpawnError,
  ClosedError,
  IncompatibleError,
} from '@libipc/shm';
export type { RestartPolicy, ExitStatus } from '@libipc/process';
