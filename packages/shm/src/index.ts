export {
  BadMessageError,
  ClosedError,
  ClusterUnavailableError,
  CycleError,
  ExistsError,
  ExitedEarlyError,
  IllegalStateError,
  IncompatibleError,
  InvalidArgumentError,
  InvalidNameError,
  LaggedError,
  LibipcError,
  NoSpaceError,
  NotFoundError,
  PermissionError,
  RegistryFullError,
  SpawnError,
  SystemError,
  TimeoutError,
  TooLargeError,
  UnsupportedError,
  UnsupportedPlatformError,
} from './errors.js';
export { validateName, validateKind, objectName } from './names.js';
export { SharedMemory, translateNativeError, type CreateOptions, type OpenOptions } from './shared-memory.js';
export { wait, waitBackend, waitSync, wake, type WaitOptions } from './wait.js';
export { RobustMutex, ROBUST_MUTEX_SIZE, type LockResult } from './robust-mutex.js';
export { Lease, LEASE_SIZE, type LeaseState, type LeaseWatchOptions } from './lease.js';
export { processIdentity, isAlive, selfIdentity, type ProcessIdentity } from './process-identity.js';
export { watchExit, type WatchExitOptions } from './watch-exit.js';
export { peerCredentials, type PeerCredentials } from './peer-credentials.js';
export { listenTcp, closeFd, DEFAULT_BACKLOG } from './tcp-listener.js';
export {
  attachSegment,
  SegmentHeader,
  HEADER_SIZE,
  SEGMENT_MAGIC,
  type AttachedSegment,
  type SegmentSpec,
  type SegmentState,
} from './segment-header.js';
export { IdentityTable, IDENTITY_SLOT_SIZE } from './identity-table.js';
export { validateTimeout } from './validate.js';
export { parseOptions, option, describeValue, MAX_TIMER_MS, type OptionsShape, type ParsedOptions } from './options.js';
export { loadAddon, type WaitOutcome } from './native.js';
export { inspectSegment, withSegment, listObjects, parseObjectName, isAliveIdentity, type SegmentInfo, type SegmentHeaderInfo } from './inspect.js';
