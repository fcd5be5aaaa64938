import { IllegalStateError } from '@libipc/shm';

/**
 * What a user sees in `libipc ps` (supervisord's names, lower case): stopped, starting, running, backoff
 * (crashed, a restart is scheduled), stopping, exited (ended on its own and is not restarted), failed (its
 * policy or restart contract gave up; FATAL in supervisord).
 */
export type ServiceState = 'stopped' | 'starting' | 'running' | 'backoff' | 'stopping' | 'exited' | 'failed';

/** Every allowed transition of a managed service, in one place. */
export const TRANSITIONS: Readonly<Record<ServiceState, readonly ServiceState[]>> = Object.freeze({
  // running: a live process of an earlier manager was adopted; failed: its restart contract was used up.
  stopped: ['starting', 'running', 'failed'],
  starting: ['running', 'backoff', 'stopping', 'exited', 'failed', 'stopped'],
  running: ['stopping', 'backoff', 'exited', 'failed'],
  backoff: ['starting', 'stopped', 'failed'],
  stopping: ['stopped'],
  exited: ['starting', 'stopped'],
  failed: ['starting', 'stopped'],
});

/** A state with a live process behind it. */
export function hasProcess(state: ServiceState): boolean {
  return state === 'starting' || state === 'running' || state === 'stopping';
}

export interface StateChange {
  name: string;
  from: ServiceState;
  to: ServiceState;
  reason: string;
}

/** Holds one service's state; any transition the table does not list is a bug and throws ERR_LIBIPC_ILLEGAL_STATE. */
export class ServiceStateMachine {
  private current: ServiceState;
  constructor(
    private readonly name: string,
    initial: ServiceState,
    private readonly onChange: (c: StateChange) => void,
  ) {
    this.current = initial;
  }

  get state(): ServiceState {
    return this.current;
  }

  can(to: ServiceState): boolean {
    return TRANSITIONS[this.current].includes(to);
  }

  to(to: ServiceState, reason: string): void {
    const from = this.current;
    if (!this.can(to)) {
      throw new IllegalStateError(
        `service ${this.name} cannot go from '${from}' to '${to}' (${reason}); allowed from '${from}': ${TRANSITIONS[from].join(', ')}`,
      );
    }
    this.current = to;
    this.onChange({ name: this.name, from, to, reason });
  }
}
