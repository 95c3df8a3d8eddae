import type { UserKey } from '../../src/domain/types.js';
import type { AppendEntry, HistoryLimits } from '../../src/ports/event-log.js';
import type { PublishRequest } from '../../src/ports/publish-lookup.js';

export const TEST_LIMITS: HistoryLimits = { size: 100, ttlMs: 600_000 };

/** What the log keeps of test event `n`. */
export const appendEntry = (n: number, pathFilter: string | null = null, sourceToken: string | null = null): AppendEntry => ({ body: JSON.stringify({ name: 'e', args: [n], namespace: '/' }), pathFilter, sourceToken });

/** A publish lookup request as the publisher makes it: idempotency key (or none) and the append. */
export function publishRequest(user: UserKey, dedupeKey: string | null, dedupeTtlMs = 60_000, append: AppendEntry = appendEntry(0), limits: HistoryLimits = TEST_LIMITS): PublishRequest {
  return { user, dedupeKey, dedupeTtlMs, append, limits };
}
