/** A daemon a launcher can start: the launcher's name, the name it registers under, and its arguments. */
export interface DaemonSpec {
  launcher: string;
  processName: string;
  /** JSON-serializable; travels to the node that starts it (at most 64 KiB as JSON). */
  args?: unknown[];
}

/**
 * Starts daemons on this node. `spawn` resolves once the daemon runs (the node has registered its name
 * before calling it, so no other node starts the same assignment); `stop` is called when this node leaves,
 * or when it finds after an etcd outage that its copy was re-placed elsewhere; `recover` lists the
 * daemons that should exist cluster-wide (asked on the leader only).
 */
export interface Launcher {
  spawn(daemon: DaemonSpec): Promise<void>;
  stop?(daemon: DaemonSpec): Promise<void>;
  /** An async iterable (e.g. an async generator); an array is accepted too. */
  recover?(): AsyncIterable<DaemonSpec> | Iterable<DaemonSpec>;
}

/** The node's local, eventually consistent view of the cluster: every call is answered from memory. */
export interface AddressBook {
  /** The node running `processName` (the oldest registration if several), or undefined. */
  locate(processName: string): string | undefined;
  /** Names registered on `node`, sorted. */
  getProcessList(node: string): string[];
  /** The node placement assigns `processName` to, over the live nodes (same answer on every node). */
  pickNode(processName: string): string | undefined;
  /** Live nodes, sorted by name. */
  getAvailableNodes(): string[];
}

/** Payload of 'daemon-placed' and 'daemon-recovered': the daemon and the node it was assigned to. */
export interface DaemonPlacement extends DaemonSpec {
  node: string;
}

/** Payload of 'daemon-failed': a daemon that could not be started (launcher error, unknown launcher, bad spec). */
export interface DaemonFailure {
  launcher?: string;
  processName?: string;
  node: string;
  error: Error;
}

/** Payload of 'duplicate': a name registered on more than one node; `nodes` oldest first (the first is what locate answers). */
export interface DuplicateRegistration {
  processName: string;
  nodes: string[];
}
