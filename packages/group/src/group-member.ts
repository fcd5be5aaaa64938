import { EventEmitter } from 'node:events';
import { ready as writeReady } from '@libipc/process';
import { ServiceRegistry } from '@libipc/registry';
import { IllegalStateError, InvalidArgumentError, NotFoundError, option, parseOptions, TimeoutError, watchExit } from '@libipc/shm';
import { instanceName, readInstanceContext } from './environment.js';

export type MemberRole = 'primary' | 'standby';

export interface JoinOptions {
  controlChannel: string;
  replyChannel: string;
  /** How often the member stamps its registry entry (default 100 ms); the host's heartbeatTimeoutMs must be larger. */
  heartbeatMs?: number;
  /** Exit (code 0) when the host dies (default true); 'host-exit' is emitted either way. */
  exitWithHost?: boolean;
  /** Run by hand (no environment contract): the domain, service and id to use. */
  domain?: string;
  service?: string;
  /** Run by hand: the instance id (default: LIBIPC_INSTANCE_ID, else the last argument). */
  id?: number;
  meta?: string;
}

const DEFAULT_HEARTBEAT_MS = 100;
const JOIN_OPTIONS = {
  controlChannel: option.custom<string>(() => true, 'a channel name'), // checked by register (ERR_LIBIPC_INVALID_NAME)
  replyChannel: option.custom<string>(() => true, 'a channel name'),
  heartbeatMs: option.ms(1, 3_600_000),
  exitWithHost: option.boolean(),
  domain: option.custom<string>(() => true, 'a name'),
  service: option.custom<string>(() => true, 'a name'),
  id: option.int(0, 1_000_000),
  meta: option.string(1024),
};

/**
 * The service side of a group: registers `<service>.<id>` in the domain the host named, beats, follows
 * the group record (fencing: only the current epoch's primary is primary) and exits with its host.
 * Events: 'role' { role, epoch } on every change of role; 'host-exit'.
 */
export class GroupMember extends EventEmitter {
  readonly id: number;
  readonly name: string;
  readonly domain: string;
  readonly service: string;
  readonly registry: ServiceRegistry;
  private role: MemberRole | undefined;
  private currentEpoch = 0;
  private readonly beat: NodeJS.Timeout;
  private readonly hostWatch = new AbortController();
  private left = false;
  private readonly registration: { controlChannel: string; replyChannel: string; meta?: string };

  private constructor(given: JoinOptions) {
    super();
    const opts = parseOptions(given, JOIN_OPTIONS, 'GroupMember.join options') as JoinOptions;
    const heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const argv = opts.id === undefined ? process.argv : [String(opts.id)];
    const ctx = readInstanceContext(process.env, argv, opts);
    this.id = ctx.id;
    this.domain = ctx.domain;
    this.service = ctx.service;
    this.name = instanceName(ctx.service, ctx.id);
    this.registry = new ServiceRegistry(ctx.domain);
    const registered = this.registry.register(this.name, opts.controlChannel, opts.replyChannel, { meta: opts.meta });
    if (!registered) {
      this.registry.close();
      throw new IllegalStateError(`another live process already holds '${this.name}' in domain '${this.domain}'; stop it first`);
    }
    this.registration = { controlChannel: opts.controlChannel, replyChannel: opts.replyChannel, meta: opts.meta };
    this.beat = setInterval(() => this.tick(), heartbeatMs);
    this.beat.unref();
    if (ctx.parent) {
      const exitWithHost = opts.exitWithHost ?? true;
      let gone = false;
      const hostGone = () => {
        if (gone || this.left) return;
        gone = true;
        this.hostWatch.abort();
        this.emit('host-exit');
        if (exitWithHost) {
          this.leave();
          process.exit(0);
        }
      };
      watchExit(ctx.parent.pid, ctx.parent.startTime, { signal: this.hostWatch.signal, ref: false }).then(hostGone, () => undefined);
      // The host's death lease, when our host holds it: the kernel breaks it as the host starts to die, before its
      // exit is reported (which waits for a large host's memory to be torn down).
      if (this.registry.groupLeaseState(ctx.service) === 'held') {
        this.registry.watchGroupLease(ctx.service, { signal: this.hostWatch.signal, ref: false }).then(
          (outcome) => outcome === 'owner-died' && hostGone(),
          () => undefined,
        );
      }
    }
    // The first 'role' event comes after join() returns, so that listeners added right after it see it.
    process.nextTick(() => this.tick());
  }

  /** Registers this process as `<service>.<id>` and starts beating. Reads the environment a ServiceGroup sets. */
  static join(opts: JoinOptions): GroupMember {
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
      throw new InvalidArgumentError('join needs { controlChannel, replyChannel }');
    }
    return new GroupMember(opts);
  }

  /** The epoch of the group record this member last read. */
  get epoch(): number {
    return this.currentEpoch;
  }

  /** True only for the primary of the current epoch: read from the group record now, not cached. */
  isPrimary(): boolean {
    if (this.left) return false;
    return this.refreshRole() === 'primary';
  }

  /** Tells the host this instance is ready (READY on LIBIPC_READY_FD; a no-op when run by hand). */
  ready(): void {
    writeReady();
  }

  /** Stops beating, unregisters and closes the registry. Idempotent. */
  leave(): void {
    if (this.left) return;
    this.left = true;
    clearInterval(this.beat);
    this.hostWatch.abort();
    try {
      this.registry.unregister(this.name);
    } finally {
      this.registry.close();
    }
  }

  // Runs from a timer: nothing thrown here may end the process. A corrupt registry, a stopped lock holder or a
  // full registry is reported ('registry-error') and retried on the next beat.
  private tick(): void {
    if (this.left) return;
    try {
      this.registry.heartbeat(this.name);
    } catch (err) {
      // Our entry was removed (a registry clear, or a host that thought we were dead): announce ourselves again.
      if (err instanceof NotFoundError) {
        const r = this.registration;
        this.guard(() => this.registry.register(this.name, r.controlChannel, r.replyChannel, { meta: r.meta }));
      } else {
        this.report(err);
      }
    }
    this.guard(() => this.refreshRole());
  }

  private guard(fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      // A stopped process holding the registry lock is normal: read the record on the next beat.
      if (!(err instanceof TimeoutError)) this.report(err);
    }
  }

  /** 'registry-error' always; 'error' too when someone listens for it (an unheard 'error' would end the process). */
  private report(err: unknown): void {
    this.emit('registry-error', err);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private refreshRole(): MemberRole {
    const state = this.registry.groupState(this.service);
    const role: MemberRole = state.primary === this.name ? 'primary' : 'standby';
    if (role !== this.role || state.epoch !== this.currentEpoch) {
      const changed = role !== this.role;
      this.role = role;
      this.currentEpoch = state.epoch;
      if (changed) this.emit('role', { role, epoch: state.epoch });
    }
    return role;
  }
}
