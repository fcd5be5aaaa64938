/** One registered service, as returned by find/list: a copy, never a view of shared memory. */
export interface ServiceEntry {
  name: string;
  controlChannel: string;
  replyChannel: string;
  /** The registered process: liveness is (pid, startTime), so a zombie or a reused pid counts as dead. */
  pid: number;
  startTime: bigint;
  registeredAt: Date;
  /** The last `heartbeat(name)`, if any. */
  heartbeatAt?: Date;
  /**
   * True when the entry carries a death lease held by its registering thread (a registration of the process
   * itself): its death is known from the kernel at once (see waitForDeath). False for registrations made for
   * another pid, whose death is known from their exit.
   */
  leased?: boolean;
  meta?: string;
}

export type ChangeType = 'registered' | 'unregistered' | 'removed-dead';

/** One change delivered by `watch()`. */
export interface RegistryChange {
  type: ChangeType;
  entry: ServiceEntry;
}
