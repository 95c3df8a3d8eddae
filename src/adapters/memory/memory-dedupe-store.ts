import type { DedupeStore } from '../../ports/dedupe-store.js';

export class MemoryDedupeStore implements DedupeStore {
  readonly #expiry = new Map<string, number>();
  readonly #now: () => number;
  #sinceSweep = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.#expiry.clear();
  }

  async firstSeen(key: string, ttlMs: number): Promise<boolean> {
    const now = this.#now();
    // Sweep now and then rather than on a timer, so the map stays bounded by the window.
    if (++this.#sinceSweep >= 1024) {
      this.#sinceSweep = 0;
      for (const [k, exp] of this.#expiry) if (exp <= now) this.#expiry.delete(k);
    }
    const exp = this.#expiry.get(key);
    if (exp !== undefined && exp > now) return false;
    this.#expiry.set(key, now + ttlMs);
    return true;
  }
}
