import type { UserKey } from '../../domain/types.js';
import type { RedisKeys } from './keys.js';
import { LuaScript } from './lua-script.js';
import type { RedisClient } from './redis-client.js';

// Per user, two hashes in one slot: {u}:c connectionId → entry JSON, and {u}:n nodeId → count.
// The counts hash makes the nodes of a user an HKEYS of a handful of fields and the cap check a sum,
// without decoding entries on the hot path.

/**
 * Admit: duplicate check + cap check + insert, atomically.
 * KEYS[1] = {u}:c, KEYS[2] = {u}:n
 * ARGV[1] = connectionId, ARGV[2] = entry JSON, ARGV[3] = the entry's nodeId, ARGV[4] = cap,
 * ARGV[5..] = nodes known dead but not yet cleaned up: their connections neither count towards
 *             the cap nor block a reconnect with the same connection id (which takes the id over).
 * Returns {1, 'ok', count} or {0, 'duplicate' | 'cap', count}.
 */
export const ADMIT = new LuaScript(`
local dead = {}
for i = 5, #ARGV do dead[ARGV[i]] = true end
local count = 0
local counts = redis.call('HGETALL', KEYS[2])
for i = 1, #counts, 2 do
  if not dead[counts[i]] then count = count + tonumber(counts[i + 1]) end
end
local prev = nil
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  local ok, e = pcall(cjson.decode, existing)
  if ok and type(e) == 'table' and type(e.nodeId) == 'string' and dead[e.nodeId] then
    prev = e.nodeId
  else
    return {0, 'duplicate', count}
  end
end
if count >= tonumber(ARGV[4]) then return {0, 'cap', count} end
if prev then
  if redis.call('HINCRBY', KEYS[2], prev, -1) <= 0 then redis.call('HDEL', KEYS[2], prev) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
return {1, 'ok', count + 1}
`);

/**
 * Remove one connection and decrement its node's count.
 * KEYS[1] = {u}:c, KEYS[2] = {u}:n; ARGV[1] = connectionId. Returns 1 when removed, 0 when absent.
 */
export const REMOVE = new LuaScript(`
local e = redis.call('HGET', KEYS[1], ARGV[1])
if not e then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local ok, d = pcall(cjson.decode, e)
if ok and type(d) == 'table' and type(d.nodeId) == 'string' then
  if redis.call('HINCRBY', KEYS[2], d.nodeId, -1) <= 0 then redis.call('HDEL', KEYS[2], d.nodeId) end
end
return 1
`);

/**
 * Replace one connection's entry, only while it exists (a removal that came first wins).
 * KEYS[1] = {u}:c; ARGV[1] = connectionId, ARGV[2] = entry JSON. Returns 1 when replaced.
 */
export const REPLACE = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`);

/**
 * Remove every connection of one node from one user (a dead node, or this node's previous life).
 * KEYS[1] = {u}:c, KEYS[2] = {u}:n; ARGV[1] = nodeId. Returns the number removed.
 */
export const REAP = new LuaScript(`
local all = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #all, 2 do
  local ok, d = pcall(cjson.decode, all[i + 1])
  if ok and type(d) == 'table' and d.nodeId == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    removed = removed + 1
  end
end
redis.call('HDEL', KEYS[2], ARGV[1])
return removed
`);

/**
 * Re-register this node's connections of one user (after Redis lost them), idempotently;
 * the node's count is recomputed from the entries rather than incremented.
 * KEYS[1] = {u}:c, KEYS[2] = {u}:n; ARGV[1] = nodeId, ARGV[2..] = connectionId, entry JSON pairs.
 * An id now held by another node is left to it. Returns the node's count for the user.
 */
export const REASSERT = new LuaScript(`
for i = 2, #ARGV, 2 do
  local prev = redis.call('HGET', KEYS[1], ARGV[i])
  local theirs = false
  if prev then
    local ok, d = pcall(cjson.decode, prev)
    theirs = ok and type(d) == 'table' and d.nodeId ~= ARGV[1]
  end
  if not theirs then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
local mine = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, d = pcall(cjson.decode, all[i + 1])
  if ok and type(d) == 'table' and d.nodeId == ARGV[1] then mine = mine + 1 end
end
if mine > 0 then redis.call('HSET', KEYS[2], ARGV[1], mine) else redis.call('HDEL', KEYS[2], ARGV[1]) end
return mine
`);

/**
 * Releases a lock only if `token` still holds it: a holder whose lock expired meanwhile must not
 * delete the lock of the next holder. KEYS[1] = lock; ARGV[1] = token. Returns 1 when released.
 */
export const RELEASE_LOCK = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

const PARALLEL = 64;

/** Runs `fn` over `items`, at most PARALLEL at a time (one pipeline-sized burst per batch). */
export async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL) await Promise.all(items.slice(i, i + PARALLEL).map(fn));
}

/** Removes `nodeId`'s entries from every user in its set (plus `extra`), then the set; returns how many. */
export async function reapNodeEntries(client: RedisClient, keys: RedisKeys, nodeId: string, extra: readonly UserKey[] = []): Promise<number> {
  const setKey = keys.nodeUsers(nodeId);
  const users = new Set([...(await client.smembers(setKey)), ...extra]);
  let removed = 0;
  await inBatches([...users], async (user) => {
    removed += Number(await REAP.run(client, [keys.userConnections(user), keys.userNodes(user)], [nodeId]));
  });
  await client.del(setKey);
  return removed;
}
