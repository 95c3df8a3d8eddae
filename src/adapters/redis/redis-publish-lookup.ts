import type { PublishAnswer, PublishLookup, PublishRequest } from '../../ports/publish-lookup.js';
import { RedisKeys } from './keys.js';
import { LuaScript } from './lua-script.js';
import type { RedisClient } from './redis-client.js';
import { redisFailure } from './redis-errors.js';
import type { RedisMembership } from './redis-membership.js';

/**
 * Idempotency check and node lookup for one published event, in one round trip on the user's slot.
 * KEYS[1] = {u}:n, KEYS[2] = {u}:d:<key>; ARGV[1] = dedupe window ms.
 * Returns {0} for a repeat, else {1, nodeId…}.
 */
const NODES_DEDUPE = new LuaScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {0} end
local r = redis.call('HKEYS', KEYS[1])
table.insert(r, 1, 1)
return r
`);

const REPEAT: PublishAnswer = { fresh: false, nodes: [] };

/**
 * The publish-time lookup on Redis: one EVALSHA (`SET NX PX` of the idempotency key, then HKEYS of
 * the user's per-node counts), or a plain HKEYS when the event has no key. The idempotency key
 * lives under the user's hash tag (`{u:<user>}:d:<key>`) so both keys share one Cluster slot.
 * Nodes are filtered by the registry's live/dead view (`RedisMembership`).
 */
export class RedisPublishLookup implements PublishLookup {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #membership: RedisMembership;

  constructor(client: RedisClient, opts: { prefix?: string; membership: RedisMembership }) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
    this.#membership = opts.membership;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async lookup(request: PublishRequest): Promise<PublishAnswer> {
    const { user, dedupeKey } = request;
    try {
      if (dedupeKey === null) return { fresh: true, nodes: this.#membership.usable(await this.#client.hkeys(this.#keys.userNodes(user))) };
      const ttl = Math.max(1, Math.ceil(request.dedupeTtlMs));
      const r = (await NODES_DEDUPE.run(this.#client, [this.#keys.userNodes(user), this.#keys.userDedupe(user, dedupeKey)], [ttl])) as [number, ...string[]];
      if (Number(r[0]) !== 1) return REPEAT;
      return { fresh: true, nodes: this.#membership.usable(r.slice(1) as string[]) };
    } catch (e) {
      throw redisFailure(e);
    }
  }
}
