/**
 * Idempotency keys in this process's memory: the in-memory publish lookup's store, and the
 * publisher's fallback while the shared backend is unreachable. Bounded by the window: expired
 * keys are swept now and then on use rather than on a timer.
 */
export class DedupeWindow {
  readonly #expiry = new Map<string, number>();
  readonly #now: () => number;
  #sinceSweep = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** True the first time `key` is seen within `ttlMs`; false for every repeat. */
  firstSeen(key: string, ttlMs: number): boolean {
    const now = this.#now();
    if (++this.#sinceSweep >= 1024) {
      this.#sinceSweep = 0;
      for (const [k, exp] of this.#expiry) if (exp <= now) this.#expiry.delete(k);
    }
    const exp = this.#expiry.get(key);
    if (exp !== undefined && exp > now) return false;
    this.#expiry.set(key, now + ttlMs);
    return true;
  }

  clear(): void {
    this.#expiry.clear();
  }
}
