import type { UserKey } from '../domain/types.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import type { DedupeStore } from '../ports/dedupe-store.js';
import type { AppendEntry, EventLog, HistoryLimits } from '../ports/event-log.js';
import type { Offset } from './offset.js';

export interface AppendingLookupResult {
  /** False when `dedupeKey` was seen within the window: nothing was appended, `nodes` is empty. */
  readonly fresh: boolean;
  /** Live nodes (this one included) holding connections of the user. */
  readonly nodes: string[];
  /** The event's offset in the user's log; null for a repeat. */
  readonly offset: Offset | null;
}

/**
 * The publish-time step with the history append joined to it: idempotency check, append, and the
 * nodes that hold the user — one round trip on Redis (redis-appending-lookup.ts), the three ports in
 * turn in memory. This seam exists until the publish lookup is one port of its own; then `entry`
 * and `limits` become part of that port's call and `offset` part of its answer.
 */
export interface AppendingLookup {
  lookup(user: UserKey, dedupeKey: string | null, dedupeTtlMs: number, entry: AppendEntry, limits: HistoryLimits): Promise<AppendingLookupResult>;
}

/** The memory backends' version: each step on its own port, which is atomic enough on one node. */
export class PortsAppendingLookup implements AppendingLookup {
  readonly #dedupe: DedupeStore;
  readonly #log: EventLog;
  readonly #registry: ConnectionRegistry;

  constructor(deps: { dedupe: DedupeStore; log: EventLog; registry: ConnectionRegistry }) {
    this.#dedupe = deps.dedupe;
    this.#log = deps.log;
    this.#registry = deps.registry;
  }

  async lookup(user: UserKey, dedupeKey: string | null, dedupeTtlMs: number, entry: AppendEntry, limits: HistoryLimits): Promise<AppendingLookupResult> {
    if (dedupeKey !== null && !(await this.#dedupe.firstSeen(`${user}:${dedupeKey}`, dedupeTtlMs))) return { fresh: false, nodes: [], offset: null };
    const offset = await this.#log.append(user, entry, limits);
    return { fresh: true, nodes: await this.#registry.nodesFor(user), offset };
  }
}
