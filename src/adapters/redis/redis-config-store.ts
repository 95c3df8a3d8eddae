import type { ConfigStore, StoredValue } from '../../ports/config-store.js';
import { RedisKeys } from './keys.js';
import type { LogLike } from '../log-like.js';
import type { RedisClient } from './redis-client.js';
import { named } from './redis-errors.js';

/**
 * One hash for every run-time value: field `<contextId>/<userId|''>/<key>`, value the StoredValue
 * JSON. Run-time values are few (operators set them by hand), so one key is enough and `all()`
 * is a single HGETALL.
 */
export class RedisConfigStore implements ConfigStore {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #log?: LogLike;

  constructor(client: RedisClient, opts: { prefix?: string; log?: LogLike } = {}) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
    this.#log = opts.log;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async all(): Promise<StoredValue[]> {
    const raw = await named(this.#client.hgetall(this.#keys.config()));
    const out: StoredValue[] = [];
    for (const [field, json] of Object.entries(raw)) {
      try {
        const v = JSON.parse(json) as StoredValue;
        if (typeof v.contextId !== 'number' || typeof v.key !== 'string' || typeof v.value !== 'string') throw new Error('wrong shape');
        out.push({ contextId: v.contextId, userId: v.userId ?? null, key: v.key, value: v.value });
      } catch (err) {
        this.#log?.warn({ field, err: String(err) }, 'unreadable run-time config value in redis; ignored');
      }
    }
    return out;
  }

  async set(v: StoredValue): Promise<void> {
    const value: StoredValue = { contextId: v.contextId, userId: v.userId, key: v.key, value: v.value };
    await named(this.#client.hset(this.#keys.config(), field(v.contextId, v.userId, v.key), JSON.stringify(value)));
  }

  async unset(contextId: number, userId: number | null, key: string): Promise<boolean> {
    return (await named(this.#client.hdel(this.#keys.config(), field(contextId, userId, key)))) > 0;
  }
}

function field(contextId: number, userId: number | null, key: string): string {
  return `${contextId}/${userId ?? ''}/${key}`;
}
