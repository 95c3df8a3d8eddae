/**
 * Counts *failed* logins per client IP and per login in a sliding window; successful logins are never slowed.
 * Per node: a cluster of N nodes lets an attacker through at most N times the limit, which still
 * stops password guessing; the store is a plain map so a node needs no round trip to refuse.
 */
export class LoginLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Seconds until the next attempt is allowed, or 0 when it is allowed now. */
  retryAfter(ip: string, login: string, limits: { perIp: number; perLogin: number; windowMs: number }): number {
    const wait = Math.max(this.#wait(`ip:${ip}`, limits.perIp, limits.windowMs), this.#wait(`login:${login.toLowerCase()}`, limits.perLogin, limits.windowMs));
    return Math.ceil(wait / 1000);
  }

  recordFailure(ip: string, login: string, windowMs: number): void {
    for (const k of [`ip:${ip}`, `login:${login.toLowerCase()}`]) {
      const list = this.#prune(k, windowMs);
      list.push(this.#now());
      this.#failures.set(k, list);
    }
    if (this.#failures.size > 100_000) this.#sweep(windowMs);
  }

  #wait(k: string, limit: number, windowMs: number): number {
    const list = this.#prune(k, windowMs);
    if (list.length < limit) return 0;
    return list[list.length - limit] + windowMs - this.#now();
  }

  #prune(k: string, windowMs: number): number[] {
    const cutoff = this.#now() - windowMs;
    const list = (this.#failures.get(k) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.#failures.delete(k);
    else this.#failures.set(k, list);
    return list;
  }

  #sweep(windowMs: number): void {
    for (const k of [...this.#failures.keys()]) this.#prune(k, windowMs);
  }
}
