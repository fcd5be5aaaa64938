import { IllegalStateError } from '@libipc/shm';

export type ProcessState = 'stopped' | 'starting' | 'running' | 'stopping' | 'backoff' | 'failed';

/** Every allowed transition of a managed process, in one place (supervisord-style states). */
export const TRANSITIONS: Readonly<Record<ProcessState, readonly ProcessState[]>> = Object.freeze({
  stopped: ['starting'],
  starting: ['running', 'stopping', 'backoff', 'failed', 'stopped'],
  running: ['stopping', 'backoff', 'stopped', 'failed'],
  stopping: ['stopped'],
  backoff: ['starting', 'stopped'],
  failed: ['starting', 'stopped'],
});

export interface Transition {
  from: ProcessState;
  to: ProcessState;
  reason: string;
}

/** Holds the current state; refuses any transition the table does not list. */
export class StateMachine {
  private current: ProcessState;
  constructor(
    initial: ProcessState,
    private readonly onTransition: (t: Transition) => void,
    private readonly what = 'process',
  ) {
    this.current = initial;
  }

  get state(): ProcessState {
    return this.current;
  }

  can(to: ProcessState): boolean {
    return TRANSITIONS[this.current].includes(to);
  }

  to(to: ProcessState, reason: string): void {
    const from = this.current;
    if (!this.can(to)) {
      throw new IllegalStateError(`${this.what} cannot go from '${from}' to '${to}' (${reason}); allowed from '${from}': ${TRANSITIONS[from].join(', ') || 'none'}`);
    }
    this.current = to;
    this.onTransition({ from, to, reason });
  }
}
