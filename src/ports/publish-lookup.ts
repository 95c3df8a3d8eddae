import type { Lifecycle } from './lifecycle.js';
import type { UserKey } from '../domain/types.js';
import type { AppendEntry, HistoryLimits } from './event-log.js';
import type { Offset } from '../history/offset.js';

/** What the publisher asks the shared backend about one event it is about to publish. */
export interface PublishRequest {
  readonly user: UserKey;
  /** Idempotency key, already scoped by the caller; null = no idempotency check. */
  readonly dedupeKey: string | null;
  /** How long `dedupeKey` is remembered, in ms. */
  readonly dedupeTtlMs: number;
  /** What the user's event log keeps of the event, appended when it is fresh. */
  readonly append: AppendEntry;
  /** The log's bounds (`tidings.history.*`), read per event as they are reloadable. */
  readonly limits: HistoryLimits;
}

export interface PublishAnswer {
  /** False when `dedupeKey` was seen within its window: the event is a repeat and goes nowhere. */
  readonly fresh: boolean;
  /** Live nodes (this one included) holding a connection of the user; empty when not fresh. */
  readonly nodes: readonly string[];
  /** The event's offset in the user's log; null exactly when not fresh (nothing was appended). */
  readonly offset: Offset | null;
}

/**
 * The publish-time step, cluster-wide: the idempotency check, the append to the user's event log
 * and the nodes that hold the user, answered together (on Redis in one round trip on the user's
 * slot, as this is the hot path). Guarantees: of concurrent requests with one (user, dedupeKey)
 * within the window exactly one is fresh, whichever node asks, and only that one is appended;
 * the offsets of fresh events follow the log's order (EventLog's guarantees); `nodes` never names
 * a node whose liveness lapsed.
 */
export interface PublishLookup extends Lifecycle {
  lookup(request: PublishRequest): Promise<PublishAnswer>;
}
