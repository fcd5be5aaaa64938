export { ClusterNode } from './cluster-node.js';
export type { ClusterNodeOptions } from './options.js';
export type { AddressBook, DaemonFailure, DaemonPlacement, DaemonSpec, DuplicateRegistration, Launcher } from './types.js';
export { Placement, createPlacement, PLACEMENT_DEFAULTS, type PlacementOptions } from './placement.js';
