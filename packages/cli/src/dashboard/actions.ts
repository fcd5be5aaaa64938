import { LibipcError } from '@libipc/shm';
import { ControlRefusedError, sendControl } from '../control/control-client.js';
import { ACTIONS, type ControlAction } from '../control/control-path.js';
import type { DashboardState } from './dashboard-state.js';
import type { SupervisorSource } from './supervisor-source.js';

/** How long a POST waits for the run to finish a restart or stop (the page follows the rest live). */
const ACTION_TIMEOUT_MS = 30_000;
const MAX_IN_FLIGHT = 8;

export interface ActionResult {
  status: number;
  body: { ok: boolean; error?: string; code?: string };
}

export function isAction(word: string): word is ControlAction {
  return (ACTIONS as readonly string[]).includes(word);
}

/**
 * Restart, stop and start of supervisor services, passed to the `libipc run` that holds the service's store
 * through its control socket; the run's Manager does it (dependents first, as always). Each one is on the time line.
 */
export class Actions {
  private inFlight = 0;

  constructor(
    private readonly supervisor: SupervisorSource,
    private readonly state: DashboardState,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  async run(storeId: string, name: string, action: ControlAction, from: string): Promise<ActionResult> {
    const store = this.supervisor.store(storeId);
    if (!store) return { status: 404, body: { ok: false, error: `no store ${storeId} on this dashboard` } };
    const known = store.rows?.rows.some((r) => r.name === name || r.service === name) ?? false;
    if (!known) return { status: 404, body: { ok: false, error: `no service '${name}' in ${store.path}` } };
    if (this.inFlight >= MAX_IN_FLIGHT) return { status: 429, body: { ok: false, error: 'too many actions at once; wait for the running ones' } };
    this.inFlight++;
    this.state.addEvents([{ at: Date.now(), source: 'dashboard', type: action, name, detail: `asked from ${from}` }]);
    try {
      await sendControl(store.path, action, name, { timeoutMs: ACTION_TIMEOUT_MS, env: this.env });
      return { status: 200, body: { ok: true } };
    } catch (err) {
      const code = err instanceof LibipcError ? err.code : 'ERR_LIBIPC_SYSTEM';
      const error = err instanceof Error ? err.message : String(err);
      const status = code === 'ERR_LIBIPC_TIMEOUT' ? 504 : err instanceof ControlRefusedError ? (code === 'ERR_LIBIPC_NOT_FOUND' ? 404 : 409) : code === 'ERR_LIBIPC_NOT_FOUND' ? 409 : 502;
      this.state.addEvents([{ at: Date.now(), source: 'dashboard', type: `${action} failed`, name, detail: error }]);
      return { status, body: { ok: false, error, code } };
    } finally {
      this.inFlight--;
    }
  }
}
