import type { NodeInfo } from '../ports/connection-registry.js';

/**
 * Where each live cluster member can be reached (its `tidings.cluster.advertiseUrl`), from the
 * registry's membership. Cached for `maxAgeMs`, re-read at once (at most every 250 ms) for a node
 * not in the cache, so a node that just joined is found and the hot path costs no Redis call.
 */
export class MemberUrls {
  readonly #members: () => Promise<readonly NodeInfo[]>;
  readonly #maxAgeMs: number;
  #urls = new Map<string, string>();
  #readAt = 0;
  #reading: Promise<void> | null = null;

  constructor(members: () => Promise<readonly NodeInfo[]>, maxAgeMs = 2000) {
    this.#members = members;
    this.#maxAgeMs = maxAgeMs;
  }

  /**
   * The URL of a live member, or null when it is not (or no longer) in the cluster. A member that
   * has not advertised its URL yet (it just started: the URL goes out with its next heartbeat) is
   * waited for up to `waitMs`.
   */
  async urlOf(nodeId: string, waitMs = 3000): Promise<string | null> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const age = Date.now() - this.#readAt;
      if (age > this.#maxAgeMs || (!this.#urls.get(nodeId) && age > 250)) await this.#read();
      const url = this.#urls.get(nodeId);
      if (url) return url;
      if (url === undefined || Date.now() > deadline) return null;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  #read(): Promise<void> {
    this.#reading ??= this.#members()
      .then((ms) => {
        this.#urls = new Map(ms.map((m) => [m.nodeId, m.advertiseUrl]));
        this.#readAt = Date.now();
      })
      .finally(() => (this.#reading = null));
    return this.#reading;
  }
}
