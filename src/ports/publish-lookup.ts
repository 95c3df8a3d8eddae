import type { Lifecycle } from './lifecycle.js';
import type { UserKey } from '../domain/types.js';

/** What the publisher asks the shared backend about one event it is about to publish. */
export interface PublishRequest {
  readonly user: UserKey;
  /** Idempotency key, already scoped by the caller; null = no idempotency check. */
  readonly dedupeKey: string | null;
  /** How long `dedupeKey` is remembered, in ms. */
  readonly dedupeTtlMs: number;
}

export interface PublishAnswer {
  /** False when `dedupeKey` was seen within its window: the event is a repeat and goes nowhere. */
  readonly fresh: boolean;
  /** Live nodes (this one included) holding a connection of the user; empty when not fresh. */
  readonly nodes: readonly string[];
}

/**
 * The publish-time step, cluster-wide: the idempotency check and the nodes that hold the user,
 * answered together (on Redis in one round trip on the user's slot, as this is the hot path).
 * Guarantees: of concurrent requests with one (user, dedupeKey) within the window exactly one
 * is fresh, whichever node asks; `nodes` never names a node whose liveness lapsed. It takes a
 * request object and returns an answer object so that more of the per-event work can join the
 * same call without changing its shape.
 */
export interface PublishLookup extends Lifecycle {
  lookup(request: PublishRequest): Promise<PublishAnswer>;
}
