import type { DedupeStore } from '../../ports/dedupe-store.js';
import { RedisKeys } from './keys.js';
import type { RedisClient } from './redis-client.js';

/** `SET key 1 NX PX ttl`: atomic, and Redis forgets the key when the window ends. */
export class RedisDedupeStore implements DedupeStore {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;

  constructor(client: RedisClient, opts: { prefix?: string } = {}) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async firstSeen(key: string, ttlMs: number): Promise<boolean> {
    const r = await this.#client.set(this.#keys.dedupe(key), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return r === 'OK';
  }
}
