import { InvalidArgumentError } from '@libipc/shm';
import type { Hasher } from './hash.js';
import { loadHasher } from './hash.js';

/**
 * Consistent hashing with bounded loads, as in ergo-extensions (and Mirrokni et al., "Consistent Hashing with
 * Bounded Loads"): names hash onto a fixed number of partitions; each member puts `replicationFactor` points on
 * a ring; a partition goes to the first member clockwise from its hash that holds fewer than
 * `ceil(partitions / members × load)` partitions. A pure function of (sorted members, options): every node
 * that sees the same membership computes the same owners, with no coordination.
 */
export interface PlacementOptions {
  /** Partitions names hash onto (default 10,240). More partitions = finer balance, more work per membership change. */
  partitions?: number;
  /** Ring points per member (default 40). */
  replicationFactor?: number;
  /** Bound on a member's partitions, as a multiple of the average (default 1.2). */
  load?: number;
}

export const PLACEMENT_DEFAULTS = { partitions: 10_240, replicationFactor: 40, load: 1.2 } as const;

function check(value: unknown, name: string, min: number, max: number, whole: boolean): number {
  if (typeof value !== 'number' || !(value >= min && value <= max) || (whole && !Number.isInteger(value))) {
    throw new InvalidArgumentError(`placement option '${name}' must be ${whole ? 'a whole number' : 'a number'} from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** The 53 high bits of xxHash64, as a double: exact, and sortable in a Float64Array. */
function point(hasher: Hasher, input: string): number {
  return Number(hasher.h64(input) >> 11n);
}

export class Placement {
  /** The members, sorted and without duplicates. */
  readonly members: readonly string[];
  readonly partitions: number;
  /** The most partitions one member owns: ceil(partitions / members × load). */
  readonly maxLoad: number;
  private readonly owners: Int32Array;
  private readonly hasher: Hasher;

  constructor(members: Iterable<string>, hasher: Hasher, opts: PlacementOptions = {}) {
    const partitions = check(opts.partitions ?? PLACEMENT_DEFAULTS.partitions, 'partitions', 1, 1 << 20, true);
    const replication = check(opts.replicationFactor ?? PLACEMENT_DEFAULTS.replicationFactor, 'replicationFactor', 1, 1000, true);
    const load = check(opts.load ?? PLACEMENT_DEFAULTS.load, 'load', 1, 100, false);
    this.hasher = hasher;
    this.members = [...new Set(members)].sort();
    this.partitions = partitions;
    this.owners = new Int32Array(partitions).fill(-1);
    const n = this.members.length;
    this.maxLoad = n === 0 ? 0 : Math.ceil((partitions / n) * load);
    if (n === 0) return;

    // The ring: replication points per member, sorted by hash (ties by member index, so the order is total).
    const size = n * replication;
    const hashes = new Float64Array(size);
    const order = new Int32Array(size);
    for (let m = 0; m < n; m++) {
      for (let r = 0; r < replication; r++) {
        hashes[m * replication + r] = point(hasher, `${this.members[m]}#${r}`);
        order[m * replication + r] = m * replication + r;
      }
    }
    order.sort((a, b) => hashes[a]! - hashes[b]! || a - b);
    const ringHash = Float64Array.from(order, (i) => hashes[i]!);
    const ringMember = Int32Array.from(order, (i) => Math.floor(i / replication));

    const loads = new Int32Array(n);
    for (let p = 0; p < partitions; p++) {
      let i = lowerBound(ringHash, point(hasher, `partition#${p}`));
      // The bound guarantees room: maxLoad × members ≥ partitions, so the walk ends within one lap.
      for (let step = 0; step < size; step++, i++) {
        const m = ringMember[i % size]!;
        if (loads[m]! < this.maxLoad) {
          loads[m]! += 1;
          this.owners[p] = m;
          break;
        }
      }
    }
  }

  /** The partition a name hashes onto. */
  partitionOf(name: string): number {
    return Number(this.hasher.h64(name) % BigInt(this.partitions));
  }

  /** The member that owns `name`, or undefined when there are no members. */
  owner(name: string): string | undefined {
    return this.ownerOfPartition(this.partitionOf(name));
  }

  ownerOfPartition(partition: number): string | undefined {
    const m = this.owners[partition];
    return m === undefined || m < 0 ? undefined : this.members[m];
  }

  /** Partitions per member. */
  loads(): Map<string, number> {
    const loads = new Map(this.members.map((m) => [m, 0]));
    for (const m of this.owners) if (m >= 0) loads.set(this.members[m]!, loads.get(this.members[m]!)! + 1);
    return loads;
  }
}

function lowerBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The placement of `members` with the default hasher (loads xxhash-wasm once per process). */
export async function createPlacement(members: Iterable<string>, opts: PlacementOptions = {}): Promise<Placement> {
  return new Placement(members, await loadHasher(), opts);
}
