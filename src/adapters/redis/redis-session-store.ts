import type { Session, SessionStore } from '../../ports/session-store.js';
import { RedisKeys } from './keys.js';
import { LuaScript } from './lua-script.js';
import type { LogLike } from '../log-like.js';
import type { RedisClient } from './redis-client.js';
import { named } from './redis-errors.js';

/**
 * Touch = rewrite expiresAt inside the JSON and move the key's expiry, atomically, and only
 * when the session still exists (a touch racing a logout must not bring the session back).
 * The JSON is written by `encode` below with expiresAt as its first member, so an anchored
 * pattern finds it without a JSON round trip in Lua.
 * KEYS[1] = session key
 * ARGV[1] = new expiresAt (epoch ms, integer), ARGV[2] = ms until then (> 0)
 * Returns 1 when touched, 0 when the session is gone, -1 when the value is not ours.
 */
const TOUCH = new LuaScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local nv, n = string.gsub(v, '^{"expiresAt":%-?%d+', '{"expiresAt":' .. ARGV[1], 1)
if n == 0 then return -1 end
redis.call('SET', KEYS[1], nv, 'PX', ARGV[2])
return 1
`);

export interface RedisSessionStoreOptions {
  readonly prefix?: string;
  readonly log?: LogLike;
  readonly now?: () => number;
}

/**
 * Sessions as JSON strings whose Redis expiry is the session's. The expiry is given relative
 * (PX = expiresAt − now on this node) rather than absolute (PXAT): a skewed Redis clock then
 * cannot end sessions early or late; skew between tidings nodes matters no more than it
 * already does for `expiresAt` itself.
 */
export class RedisSessionStore implements SessionStore {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #log?: LogLike;
  readonly #now: () => number;

  constructor(client: RedisClient, opts: RedisSessionStoreOptions = {}) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async put(session: Session): Promise<void> {
    const key = this.#keys.session(session.id);
    const ttl = Math.ceil(session.expiresAt - this.#now());
    if (ttl <= 0) {
      await named(this.#client.del(key));
      return;
    }
    await named(this.#client.set(key, encode(session), 'PX', ttl));
  }

  async get(id: string): Promise<Session | null> {
    return this.#decode(id, await named(this.#client.get(this.#keys.session(id))));
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    const key = this.#keys.session(id);
    const at = Math.ceil(expiresAt);
    const ttl = at - this.#now();
    if (ttl <= 0) {
      await named(this.#client.del(key));
      return;
    }
    const r = await named(TOUCH.run(this.#client, [key], [at, ttl]));
    if (r === -1) this.#log?.warn({ sessionId: id }, 'session value is not in the expected format; not touched');
  }

  async delete(id: string): Promise<Session | null> {
    return this.#decode(id, await named(this.#client.getdel(this.#keys.session(id))));
  }

  #decode(id: string, raw: string | null): Session | null {
    if (raw === null) return null;
    try {
      const s = JSON.parse(raw) as Session;
      if (typeof s !== 'object' || s === null || s.id !== id || typeof s.expiresAt !== 'number') throw new Error('wrong shape');
      return s;
    } catch (err) {
      this.#log?.warn({ sessionId: id, err: String(err) }, 'unreadable session in redis; treated as absent');
      return null;
    }
  }
}

/** expiresAt first: the TOUCH script relies on it. Integer ms, so the pattern always matches. */
function encode(s: Session): string {
  const at = Math.ceil(s.expiresAt);
  return JSON.stringify(Object.assign({ expiresAt: at }, s, { expiresAt: at }));
}
