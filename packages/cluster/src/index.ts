export { ClusterNode } from './cluster-node.js';
export type { ClusterNodeOptions } from './options.js';
export type { AuthOptions, TlsOptions } from './security.js';
export { etcdOptionsFromEnv, type EtcdConnection } from './env.js';
export type {
  AddressBook,
  ArgsSchema,
  DaemonFailure,
  DaemonPlacement,
  DaemonSpec,
  DuplicateRegistration,
  FencedEvent,
  Launcher,
  RefusedRequest,
  StandardResult,
} from './types.js';
export { Placement, createPlacement, PLACEMENT_DEFAULTS, type PlacementOptions } from './placement.js';
