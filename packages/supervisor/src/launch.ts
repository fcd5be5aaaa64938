import { type ManagedProcessSpec, resolveExecutable } from '@libipc/process';
import { serviceEnv } from './environment.js';
import { listenEnv } from './listen-sockets.js';
import { logPaths } from './logs.js';
import { processReadiness } from './readiness.js';
import type { ResolvedSpec, ServiceSpec } from './spec.js';

// `sh -c` that opens the service's log FIFOs as its stdout and stderr, then becomes the service (same pid).
const LOG_WRAPPER = 'o=$1 e=$2; shift 2; exec "$@" 1<>"$o" 2<>"$e"';

/**
 * What @libipc/process's ManagedProcess runs for one service (or instance): command, env contract, logs, and
 * `listenFds`, the fds of the spec's `listen` ports (same order), handed over as fds 4, 5, ….
 */
export function launchSpec(
  u: { name: string; service: string; index: number; raw: ServiceSpec; spec: ResolvedSpec },
  globalEnv: Record<string, string>,
  listenFds: number[] = [],
): ManagedProcessSpec {
  const { spec } = u;
  const readiness = spec.readiness;
  const base = serviceEnv(globalEnv, spec.env, {
    service: u.service,
    instanceId: u.index,
    domain: typeof readiness === 'object' && 'registry' in readiness ? readiness.domain : undefined,
  });
  const env = listenFds.length > 0 ? { ...base, ...listenEnv(spec.listen, base) } : base;
  // Instances also get their id as the last argument (DESIGN.md's contract).
  const args = u.raw.instances === undefined ? spec.args : [...spec.args, String(u.index)];
  let command = spec.command;
  let argv = args;
  if (typeof spec.logs === 'object') {
    // The check ManagedProcess would make, made here because the wrapper shell runs the command.
    const file = resolveExecutable(spec.command, env.PATH ?? process.env.PATH, spec.cwd ?? process.cwd());
    const p = logPaths(spec.logs.dir, u.name);
    command = '/bin/sh';
    argv = ['-c', LOG_WRAPPER, 'libipc-log', p.fifo.stdout, p.fifo.stderr, file, ...args];
  }
  return {
    name: u.name,
    command,
    args: argv,
    env,
    cwd: spec.cwd,
    restart: spec.restart,
    readiness: processReadiness(readiness),
    readyTimeoutMs: spec.startTimeoutMs,
    stopTimeoutMs: spec.stopTimeoutMs,
    // With log files the shell wrapper sets stdout and stderr itself; stdin is /dev/null.
    stdio: spec.logs === 'inherit' ? 'inherit' : 'ignore',
    // Its own process group: stop reaches its children, and Ctrl-C in our terminal does not reach it.
    killTree: true,
    ...(listenFds.length > 0 ? { inheritFds: listenFds } : {}),
  };
}
