import type { UserKey } from '../../domain/types.js';
import type { AppendingLookup, AppendingLookupResult } from '../../history/appending-lookup.js';
import type { AppendEntry, HistoryLimits } from '../../ports/event-log.js';
import { APPEND_KEY_COUNT, appendArgs, appendKeys, appendLua } from './history-lua.js';
import { RedisKeys } from './keys.js';
import { LuaScript, type RedisClient } from './redis-client.js';

/**
 * Idempotency check, history append and node lookup for one published event, in one round trip.
 * KEYS[1] = {u}:n, KEYS[2..3] = the append's keys ({u}:h, {u}:hm), KEYS[4] = {u}:d:<key> (only with a key)
 * ARGV[1] = dedupe window ms, ARGV[2..9] = the append's arguments (history-lua.ts)
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

export class RedisAppendingLookup implements AppendingLookup {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  /** Drops nodes the registry knows to be dead (RedisConnectionRegistry.liveOf). */
  readonly #live: (nodes: string[]) => string[];

  constructor(client: RedisClient, opts: { prefix?: string; live: (nodes: string[]) => string[] }) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
    this.#live = opts.live;
  }

  async lookup(user: UserKey, dedupeKey: string | null, dedupeTtlMs: number, entry: AppendEntry, limits: HistoryLimits): Promise<AppendingLookupResult> {
    const keys = [this.#keys.userNodes(user), ...appendKeys(this.#keys, user)];
    if (dedupeKey !== null) keys.push(this.#keys.userDedupe(user, dedupeKey));
    const r = (await PUBLISH.run(this.#client, keys, [Math.max(1, Math.ceil(dedupeTtlMs)), ...appendArgs(entry, limits)])) as unknown[];
    if (Number(r[0]) !== 1) return { fresh: false, nodes: [], offset: null };
    return { fresh: true, nodes: this.#live((r.slice(3) as string[]).map(String)), offset: { epoch: String(r[1]), seq: Number(r[2]) } };
  }
}
