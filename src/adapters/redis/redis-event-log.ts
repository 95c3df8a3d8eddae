import type { UserKey } from '../../domain/types.js';
import { newEpoch, type Offset } from '../../history/offset.js';
import { LOG_RECORD_TTL_MS, type AppendEntry, type EventLog, type HistoryLimits, type LogEntry, type LogRead, type NotRecoveredReason } from '../../ports/event-log.js';
import { APPEND_SCRIPT, appendArgs, appendKeys, READ_SCRIPT } from './history-lua.js';
import { RedisKeys } from './keys.js';
import { LuaScript } from './lua-script.js';
import type { RedisClient } from './redis-client.js';
import { named } from './redis-errors.js';

const APPEND = new LuaScript(APPEND_SCRIPT);
const READ = new LuaScript(READ_SCRIPT);

/**
 * The event log on Redis: one stream and one small hash per user (history-lua.ts). On the publish
 * path the append runs inside the publish script instead; `append` here runs the same fragment alone.
 */
export class RedisEventLog implements EventLog {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;

  constructor(client: RedisClient, opts: { prefix?: string } = {}) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async append(user: UserKey, entry: AppendEntry, limits: HistoryLimits): Promise<Offset> {
    const r = (await named(APPEND.run(this.#client, appendKeys(this.#keys, user), appendArgs(entry, limits)))) as [string, number];
    return { epoch: String(r[0]), seq: Number(r[1]) };
  }

  async read(user: UserKey, since: Offset | null, limits: HistoryLimits): Promise<LogRead> {
    const now = Date.now();
    const args = [newEpoch(now), now, Math.max(1, limits.ttlMs), Math.max(limits.ttlMs, LOG_RECORD_TTL_MS), since?.epoch ?? '', since?.seq ?? 0, limits.size];
    const r = (await named(READ.run(this.#client, appendKeys(this.#keys, user), args))) as unknown[];
    if (Number(r[0]) !== 1) return { recovered: false, reason: String(r[1]) as NotRecoveredReason, epoch: String(r[2]), last: Number(r[3]) };
    return { recovered: true, epoch: String(r[1]), last: Number(r[2]), entries: (r.slice(3) as [string, string[]][]).map(toEntry) };
  }
}

function toEntry([id, fields]: [string, string[]]): LogEntry {
  const dash = id.indexOf('-');
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
  return { seq: Number(id.slice(dash + 1)), at: Number(id.slice(0, dash)), body: f.b ?? '{}', pathFilter: f.p ? f.p : null, sourceToken: f.s ? f.s : null };
}
