import type { UserKey } from '../../domain/types.js';
import { newEpoch } from '../../history/offset.js';
import { LOG_RECORD_TTL_MS, type AppendEntry, type HistoryLimits } from '../../ports/event-log.js';
import type { RedisKeys } from './keys.js';

/**
 * The Lua of the event log on Redis, as fragments, so that the append can run inside the publish
 * script (idempotency, append, node lookup: one round trip per published event) and on its own.
 *
 * Per user, both in the user's hash-tag slot:
 *   {u}:hm  hash    e = epoch, s = last seq, t = ms of the last append (never goes back),
 *                   x = ms when the expiries were last pushed out
 *   {u}:h   stream  one entry per event, id `<t>-<seq>`, fields b (body), p (path filter), s (source token)
 * Stream ids carry the time (a read checks ages by it) and the seq (the offset); t is kept monotonic
 * so explicit ids always increase even when node clocks differ. The stream is trimmed by count at
 * each append (`MAXLEN ~`, so Redis may keep up to one stream node more than `size`; a read never
 * replays more than `size`) and expires whole `ttl` (+ slack) after the last append.
 */

/**
 * Expiries are pushed out at most once per this slack (x in the record says when it was last
 * done), to bound + slack, so they never lapse sooner than the bound after an append: a PEXPIRE per
 * append was the dearest part of the script. Reads check ages themselves, so the slack never shows
 * as an entry older than the age bound.
 */
const EXPIRY_SLACK_MS = 60_000;

/** How many KEYS and ARGV the append fragment takes. */
export const APPEND_KEY_COUNT = 2;
export const APPEND_ARG_COUNT = 8;

/**
 * The append fragment, reading KEYS[k+1..k+2] and ARGV[a+1..a+8] (see appendKeys/appendArgs):
 *   KEYS[k+1] = {u}:h, KEYS[k+2] = {u}:hm
 *   ARGV[a+1] = epoch to start when the log has none, ARGV[a+2] = now (ms), ARGV[a+3] = size,
 *   ARGV[a+4] = age bound (ms), ARGV[a+5] = record ttl (ms), ARGV[a+6] = body,
 *   ARGV[a+7] = path filter or '', ARGV[a+8] = source token or ''
 * Leaves `h_epoch` and `h_seq` (the new event's offset) as locals for the rest of the script.
 */
export function appendLua(k: number, a: number): string {
  const K = (i: number) => `KEYS[${k + i}]`;
  const A = (i: number) => `ARGV[${a + i}]`;
  return `
local h_meta = redis.call('HMGET', ${K(2)}, 'e', 's', 't', 'x')
local h_epoch = h_meta[1]
local h_seq, h_t, h_x
if h_epoch then
  h_seq = tonumber(h_meta[2]) + 1
  h_t = tonumber(h_meta[3])
  h_x = tonumber(h_meta[4]) or 0
else
  h_epoch = ${A(1)}
  h_seq = 1
  h_t = 0
  h_x = 0
  redis.call('DEL', ${K(1)})
end
local h_now = tonumber(${A(2)})
if h_now < h_t then h_now = h_t end
local h_renew = h_now - h_x >= ${EXPIRY_SLACK_MS}
if h_renew then
  redis.call('HSET', ${K(2)}, 'e', h_epoch, 's', string.format('%d', h_seq), 't', string.format('%d', h_now), 'x', string.format('%d', h_now))
  redis.call('PEXPIRE', ${K(2)}, tonumber(${A(5)}) + ${EXPIRY_SLACK_MS})
else
  redis.call('HSET', ${K(2)}, 'e', h_epoch, 's', string.format('%d', h_seq), 't', string.format('%d', h_now))
end
if tonumber(${A(3)}) > 0 then
  local h_id = string.format('%d-%d', h_now, h_seq)
  if not redis.call('XADD', ${K(1)}, 'NOMKSTREAM', 'MAXLEN', '~', ${A(3)}, h_id, 'b', ${A(6)}, 'p', ${A(7)}, 's', ${A(8)}) then
    redis.call('XADD', ${K(1)}, 'MAXLEN', '~', ${A(3)}, h_id, 'b', ${A(6)}, 'p', ${A(7)}, 's', ${A(8)})
    h_renew = true
  end
  if h_renew then redis.call('PEXPIRE', ${K(1)}, tonumber(${A(4)}) + ${EXPIRY_SLACK_MS}) end
else
  redis.call('DEL', ${K(1)})
end
`;
}

export function appendKeys(keys: RedisKeys, user: UserKey): string[] {
  return [keys.userHistory(user), keys.userHistoryMeta(user)];
}

export function appendArgs(entry: AppendEntry, limits: HistoryLimits, now = Date.now()): (string | number)[] {
  return [newEpoch(now), now, limits.size, Math.max(1, limits.ttlMs), Math.max(limits.ttlMs, LOG_RECORD_TTL_MS), entry.body, entry.pathFilter ?? '', entry.sourceToken ?? ''];
}

/** The append on its own: returns {epoch, seq}. */
export const APPEND_SCRIPT = `${appendLua(0, 0)}
return {h_epoch, h_seq}
`;

/**
 * Read after an offset. KEYS[1] = {u}:h, KEYS[2] = {u}:hm
 * ARGV[1] = epoch to start when the log has none, ARGV[2] = now (ms), ARGV[3] = age bound (ms),
 * ARGV[4] = record ttl (ms), ARGV[5] = since epoch ('' = just the head), ARGV[6] = since seq,
 * ARGV[7] = size (more missed events than that are "trimmed", whatever the stream still holds)
 * Returns {1, epoch, last, entry…} (entries oldest first, as XRANGE gives them) or
 * {0, reason, epoch, last}. With no log, an empty one is started at seq 0.
 */
export const READ_SCRIPT = `
local m = redis.call('HMGET', KEYS[2], 'e', 's')
local epoch = m[1]
local last
if epoch then
  last = tonumber(m[2])
else
  epoch = ARGV[1]
  last = 0
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 's', '0', 't', '0')
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
if ARGV[5] == '' then return {1, epoch, last} end
if ARGV[5] ~= epoch then return {0, 'epoch', epoch, last} end
local since = tonumber(ARGV[6])
if since > last then return {0, 'ahead', epoch, last} end
local n = last - since
if n == 0 then return {1, epoch, last} end
if n > tonumber(ARGV[7]) then return {0, 'trimmed', epoch, last} end
local got = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', n)
if #got < n then return {0, 'trimmed', epoch, last} end
local ms, seq = string.match(got[n][1], '^(%d+)-(%d+)$')
if tonumber(seq) ~= since + 1 or tonumber(ms) < tonumber(ARGV[2]) - tonumber(ARGV[3]) then return {0, 'trimmed', epoch, last} end
local out = {1, epoch, last}
for i = n, 1, -1 do out[#out + 1] = got[i] end
return out
`;
