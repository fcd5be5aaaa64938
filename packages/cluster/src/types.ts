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
  /**
   * What `args` this launcher accepts, checked before a daemon is placed and again by the node that starts it
   * (a request that fails it is refused, never spawned): a Standard Schema (zod, valibot, arktype…), an object
   * with zod's `safeParse`, or a function that returns false or a reason (or throws) to refuse.
   */
  argsSchema?: ArgsSchema;
  /**
   * Keep this launcher's daemons running when the node fences itself (it cannot renew its lease): only for
   * daemons that are safe to run twice, since the leader starts another copy elsewhere once the lease expires.
   */
  keepRunningWhenFenced?: boolean;
}

/** A launcher's check of `args` (see Launcher.argsSchema). */
export type ArgsSchema =
  | { readonly '~standard': { validate(value: unknown): StandardResult | Promise<StandardResult> } }
  | { safeParse(value: unknown): { success: boolean; error?: unknown } }
  | ((args: unknown[]) => boolean | string | void | Promise<boolean | string | void>);

/** The result of a Standard Schema's validate(). */
export type StandardResult = { value: unknown; issues?: undefined } | { issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }> };

/** Payload of 'fenced': the node could not renew its lease in time and stopped its daemons. */
export interface FencedEvent {
  /** The daemons stopped (their launchers' stop() has returned). */
  stopped: DaemonSpec[];
  /** Daemons left running: their launcher set keepRunningWhenFenced. */
  kept: DaemonSpec[];
}

/** Payload of 'request-refused': a request in this node's inbox that was refused, never spawned. */
export interface RefusedRequest {
  processName: string;
  launcher?: string;
  /** The node that asked, if the request said. */
  from?: string;
  error: Error;
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
