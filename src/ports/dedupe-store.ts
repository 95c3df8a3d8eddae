import type { Lifecycle } from './lifecycle.js';

/** Idempotency keys, cluster-wide. */
export interface DedupeStore extends Lifecycle {
  /** True the first time `key` is seen within `ttlMs`; false for every repeat. Atomic. */
  firstSeen(key: string, ttlMs: number): Promise<boolean>;
}
