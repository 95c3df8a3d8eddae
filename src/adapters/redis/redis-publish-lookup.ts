import type { PublishAnswer, PublishLookup, PublishRequest } from '../../ports/publish-lookup.js';
import { APPEND_KEY_COUNT, appendArgs, appendKeys, appendLua } from './history-lua.js';
import { RedisKeys } from './keys.js';
import { LuaScript } from './lua-script.js';
import type { RedisClient } from './redis-client.js';
import { redisFailure } from './redis-errors.js';
import type { RedisMembership } from './redis-membership.js';

/**
 * Idempotency check, history append and node lookup for one published event, in one round trip
 * on the user's slot (every key is under the user's hash tag).
 * KEYS[1] = {u}:n, KEYS[2..3] = the append's keys ({u}:h, {u}:hm), KEYS[4] = {u}:d:<key> (only with a key);
 * ARGV[1] = dedupe window ms, ARGV[2..9] = the append's arguments (history-lua.ts).
 * Returns {0} for a repeat, else {1, epoch, seq, nodeId…}.
 */
const DEDUPE_KEY = 1 + APPEND_KEY_COUNT + 1;
const PUBLISH = new LuaScript(`
if #KEYS >= ${DEDUPE_KEY} and not redis.call('SET', KEYS[${DEDUPE_KEY}], '1', 'NX', 'PX', ARGV[1]) then return {0} end
${appendLua(1, 1)}
local r = redis.call('HKEYS', KEYS[1])
table.insert(r, 1, h_seq)
table.insert(r, 1, h_epoch)
table.insert(r, 1, 1)
return r
`);

const REPEAT: PublishAnswer = { fresh: false, nodes: [], offset: null };

/**
 * The publish-time lookup on Redis: one EVALSHA per published event, keyed or not (`SET NX PX` of
 * the idempotency key, the append to the user's log, HKEYS of the user's per-node counts). The
 * idempotency key lives under the user's hash tag (`{u:<user>}:d:<key>`), as do the log's keys, so
 * all of them share one Cluster slot. Nodes are filtered by the registry's live/dead view
 * (`RedisMembership`).
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
    const keys = [this.#keys.userNodes(user), ...appendKeys(this.#keys, user)];
    if (dedupeKey !== null) keys.push(this.#keys.userDedupe(user, dedupeKey));
    const ttl = Math.max(1, Math.ceil(request.dedupeTtlMs));
    try {
      const r = (await PUBLISH.run(this.#client, keys, [ttl, ...appendArgs(request.append, request.limits)])) as unknown[];
      if (Number(r[0]) !== 1) return REPEAT;
      return { fresh: true, nodes: this.#membership.usable((r.slice(3) as unknown[]).map(String)), offset: { epoch: String(r[1]), seq: Number(r[2]) } };
    } catch (e) {
      throw redisFailure(e);
    }
  }
}
