import { IncompatibleError } from '@libipc/shm';
import { z } from 'zod';
import type { ServiceSpec } from './spec.js';
import type { ServiceState } from './states.js';

/** A service as saved: its spec (dependsOn included). */
export interface StoredService {
  spec: ServiceSpec;
}

/** One running name (a service, or one instance of it) as saved. */
export interface StoredInstance {
  name: string;
  /** The spec it belongs to. */
  service: string;
  /** What the user asked for: 'running' survives a restart of the manager. */
  desired: 'running' | 'stopped';
  state: ServiceState;
  /** Identity of its process (pid + start time in clock ticks, as a decimal string), when it has one. */
  pid?: number;
  startTime?: string;
  restarts: number;
  /** Unplanned restarts counted against the spec's restartLimit. */
  contractRestarts: number;
  reason?: string;
  /** ms since the epoch. */
  updatedAt: number;
}

/** The manager that holds a store: pid + start time. */
export interface StoreOwner {
  pid: number;
  startTime: string;
}

export interface StoreSnapshot {
  owner?: StoreOwner;
  services: StoredService[];
  instances: StoredInstance[];
}

/**
 * Where a Manager keeps specs, dependencies, desired states and process identities, so that a new Manager
 * can take over after the old one died. Calls are synchronous and may be batched by the store; `flush`
 * makes them durable.
 */
export interface Store {
  load(): StoreSnapshot;
  putService(service: StoredService): void;
  /** Removes the service and its instances. */
  deleteService(name: string): void;
  putInstance(instance: StoredInstance): void;
  deleteInstance(name: string): void;
  setOwner(owner: StoreOwner | undefined): void;
  /** True when another process changed the store since this one last read or wrote it (the reconciler reloads then). */
  changedExternally?(): boolean;
  flush?(): void;
  close(): void;
}

const STATES = ['stopped', 'starting', 'running', 'backoff', 'stopping', 'exited', 'failed'] as const;

export const storedInstanceSchema = z.object({
  name: z.string(),
  service: z.string(),
  desired: z.enum(['running', 'stopped']),
  state: z.enum(STATES),
  pid: z.number().int().positive().optional(),
  startTime: z.string().regex(/^\d+$/).optional(),
  restarts: z.number().int().min(0),
  contractRestarts: z.number().int().min(0),
  reason: z.string().optional(),
  updatedAt: z.number(),
});

export const ownerSchema = z.object({ pid: z.number().int().positive(), startTime: z.string().regex(/^\d+$/) });

/** Specs are checked by the manager (validateSpec); here only their shape as records. */
export const snapshotSchema = z.object({
  owner: ownerSchema.optional(),
  services: z.array(z.object({ spec: z.looseObject({ name: z.string() }) })),
  instances: z.array(storedInstanceSchema),
});

/** Checks data read from a store; anything else is ERR_LIBIPC_INCOMPATIBLE naming where it came from. */
export function checkSnapshot(data: unknown, where: string): StoreSnapshot {
  const r = snapshotSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new IncompatibleError(
      `${where} is not a valid supervisor store (${issue ? `${issue.path.join('.') || 'top level'}: ${issue.message}` : 'bad shape'}); move it away or repair it`,
    );
  }
  return r.data as unknown as StoreSnapshot;
}
