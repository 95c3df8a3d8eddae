import { randomUUID } from 'node:crypto';
import type { AdmitResult, ConnectionEntry, ConnectionRegistry, NodeInfo } from '../../ports/connection-registry.js';
import type { UserKey } from '../../domain/types.js';
import keySlot from 'cluster-key-slot';
import { RedisKeys } from './keys.js';
import { isCluster, LuaScript, type LogLike, type RedisClient } from './redis-client.js';

// Per user, two hashes in one slot: {u}:c connectionId → entry JSON, and {u}:n nodeId → count.
// The counts hash makes nodesFor an HKEYS of a handful of fields and the cap check a sum,
// without decoding entries on the hot path.

/**
 * Admit: duplicate check + cap check + insert, atomically.
 * KEYS[1] = {u}:c, KEYS[2] = {u}:n
 * ARGV[1] = connectionId, ARGV[2] = entry JSON, ARGV[3] = the entry's nodeId, ARGV[4] = cap,
 * ARGV[5..] = nodes known dead but not yet cleaned up: their connections neither count towards
 *             the cap nor block a reconnect with the same connection id (which takes the id over).
 * Returns {1, 'ok', count} or {0, 'duplicate' | 'cap', count}.
 */
const ADMIT = new LuaScript(`
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
const REMOVE = new LuaScript(`
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
 * Remove every connection of one node from one user (a dead node, or this node's previous life).
 * KEYS[1] = {u}:c, KEYS[2] = {u}:n; ARGV[1] = nodeId. Returns the number removed.
 */
const REAP = new LuaScript(`
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
const REASSERT = new LuaScript(`
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
 * Idempotency check and node lookup for one published event, in one round trip.
 * KEYS[1] = {u}:n, KEYS[2] = {u}:d:<key>; ARGV[1] = dedupe window ms.
 * Returns {0} for a repeat, else {1, nodeId…}.
 */
const NODES_DEDUPE = new LuaScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {0} end
local r = redis.call('HKEYS', KEYS[1])
table.insert(r, 1, 1)
return r
`);

export interface RedisConnectionRegistryOptions {
  readonly prefix?: string;
  readonly nodeId: string;
  /** ms between heartbeats. Default 2000. */
  readonly heartbeatMs?: number;
  /** ms a node stays live without a heartbeat. Default 10000. */
  readonly livenessTtlMs?: number;
  readonly log?: LogLike;
}

interface AliveValue {
  readonly instance: string;
  readonly lastSeen: number;
  readonly connections: number;
  readonly byTransport: Record<string, number>;
}

const REAP_LOCK_MS = 30_000;
const DEAD_MEMORY_MS = 10 * 60_000;
const PARALLEL = 64;

/**
 * The cluster-wide registry on Redis.
 *
 * Liveness: every `heartbeatMs` the node writes `{n:<id>}:alive` with PX `livenessTtlMs` and
 * its stats, and stamps itself in the `nodes` index. The same beat reads the index and every
 * member's liveness key: that refreshes the in-memory live/dead sets which `nodesFor` filters
 * by (no per-event liveness lookups). A node in the index whose liveness key is gone is dead:
 * one survivor (lock `{n:<id>}:reap`) removes its entries user by user, using the dead node's
 * `{n:<id>}:users` set, then drops it from the index. Worst case from a crash to clean-up:
 * livenessTtlMs + heartbeatMs + the reap itself (≈ 12 s with the defaults; contract: ≤ 15 s).
 *
 * Self-healing: the node keeps its own entries in memory. When the beat's `SET … GET` finds its
 * liveness key missing (Redis restarted empty, or the node was presumed dead and reaped), and on
 * every 'ready' after a reconnect (a Sentinel failover may lose the last writes), it re-asserts
 * all of them. On a Redis Cluster one primary can restart empty while the liveness key lives on
 * another, so the beat also keeps one canary key on every primary and re-asserts when one of
 * them vanished. A survivor that reaped a node which came back meanwhile deletes that node's
 * liveness key, so it re-asserts once more and nothing it re-added is lost.
 *
 * Node ids must be unique: start() removes entries left under this id by a previous life.
 */
export class RedisConnectionRegistry implements ConnectionRegistry {
  readonly nodeId: string;
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #heartbeatMs: number;
  readonly #ttlMs: number;
  readonly #log?: LogLike;
  readonly #instance = randomUUID();

  readonly #own = new Map<UserKey, Map<string, ConnectionEntry>>();
  readonly #pending = new Map<UserKey, number>();
  /** Removals that failed while Redis was unreachable; retried on each beat. */
  readonly #failedRemovals = new Map<UserKey, Set<string>>();
  #live = new Set<string>();
  /** Dead nodes, remembered (with when) beyond their removal from the index. */
  readonly #dead = new Map<string, number>();
  #infos = new Map<string, NodeInfo>();
  readonly #reaping = new Set<string>();

  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #beats = 0;
  #lastRefresh = 0;
  #reassertAll = false;
  #stopped = false;
  #stopping: Promise<void> | null = null;
  #beatFailing = false;
  /** Redis Cluster: primary address → this node's canary key on that primary's slots. */
  readonly #canaries = new Map<string, string>();
  readonly #canariesWritten = new Set<string>();
  /** See registered(): false from a dropped connection until a beat has re-asserted everything. */
  #registered = true;
  readonly #onReady = (): void => {
    this.#reassertAll = true;
    this.#kick();
  };
  readonly #onClose = (): void => {
    this.#registered = false;
  };

  constructor(client: RedisClient, opts: RedisConnectionRegistryOptions) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
    this.nodeId = opts.nodeId;
    this.#heartbeatMs = opts.heartbeatMs ?? 2000;
    this.#ttlMs = opts.livenessTtlMs ?? 10_000;
    this.#log = opts.log;
    if (this.#ttlMs <= this.#heartbeatMs) throw new Error('livenessTtlMs must be larger than heartbeatMs');
  }

  /** Cleans up a previous life of this node id, then beats once. Rejects when Redis is unreachable. */
  async start(): Promise<void> {
    const removed = await this.#reapUsers(this.nodeId);
    if (removed > 0) this.#log?.info({ nodeId: this.nodeId, removed }, 'removed registry entries left by a previous run of this node');
    await this.#beat();
    this.#client.on('ready', this.#onReady);
    this.#client.on('close', this.#onClose);
    this.#schedule();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#halt();
    await this.#running?.catch(() => {});
    const users = [...this.#own.keys()];
    this.#own.clear();
    try {
      await this.#reapUsers(this.nodeId, users);
      await Promise.all([this.#client.del(this.#keys.nodeAlive(this.nodeId)), this.#client.zrem(this.#keys.nodeIndex(), this.nodeId), ...[...this.#canaries.values()].map((k) => this.#client.del(k))]);
    } catch (err) {
      // The survivors clean up after livenessTtlMs instead.
      this.#log?.warn({ err: String(err) }, 'could not remove this node from the registry; survivors will');
    }
  }

  /** Test hook: stop heart-beating as a crashed process would, leaving everything in Redis. */
  crash(): void {
    this.#halt();
    this.#own.clear();
    this.#stopping = Promise.resolve();
  }

  #halt(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#client.off('ready', this.#onReady);
    this.#client.off('close', this.#onClose);
  }

  registered(): boolean {
    return this.#registered;
  }

  async admit(user: UserKey, entry: ConnectionEntry, cap: number): Promise<AdmitResult> {
    const mine = entry.nodeId === this.nodeId;
    if (mine) this.#pending.set(user, (this.#pending.get(user) ?? 0) + 1);
    try {
      // The user goes into this node's set before the entry exists, so a crash in between
      // can never leave an entry that no survivor knows to reap.
      if (mine && !this.#own.has(user)) await this.#client.sadd(this.#keys.nodeUsers(this.nodeId), user);
      const r = (await ADMIT.run(this.#client, [this.#keys.userConnections(user), this.#keys.userNodes(user)], [entry.connectionId, JSON.stringify(entry), entry.nodeId, cap, ...this.#dead.keys()])) as [number, string, number];
      const count = Number(r[2]);
      if (r[0] !== 1) return { ok: false, reason: r[1] === 'cap' ? 'cap' : 'duplicate', count };
      if (mine) {
        let conns = this.#own.get(user);
        if (!conns) this.#own.set(user, (conns = new Map()));
        conns.set(entry.connectionId, entry);
        this.#failedRemovals.get(user)?.delete(entry.connectionId);
      }
      return { ok: true, count };
    } finally {
      if (mine) {
        const pending = (this.#pending.get(user) ?? 1) - 1;
        if (pending > 0) this.#pending.set(user, pending);
        else this.#pending.delete(user);
        await this.#settle(user);
      }
    }
  }

  async remove(user: UserKey, connectionId: string): Promise<void> {
    const conns = this.#own.get(user);
    if (conns?.delete(connectionId) && conns.size === 0) this.#own.delete(user);
    try {
      await REMOVE.run(this.#client, [this.#keys.userConnections(user), this.#keys.userNodes(user)], [connectionId]);
    } catch (err) {
      let set = this.#failedRemovals.get(user);
      if (!set) this.#failedRemovals.set(user, (set = new Set()));
      set.add(connectionId);
      throw err;
    }
    await this.#settle(user);
  }

  /** Drops the user from this node's set once nothing of it is left or under way here. */
  async #settle(user: UserKey): Promise<void> {
    if (this.#own.has(user) || this.#pending.has(user) || this.#failedRemovals.get(user)?.size) return;
    await this.#client.srem(this.#keys.nodeUsers(this.nodeId), user).catch(() => {});
  }

  async nodesFor(user: UserKey): Promise<string[]> {
    return this.#usable(await this.#client.hkeys(this.#keys.userNodes(user)));
  }

  /**
   * `firstSeen(dedupeKey)` and `nodesFor(user)` in one round trip on the user's slot. The key is
   * kept under the user's hash tag, so it is a different key from DedupeStore's: a publisher
   * uses one or the other for a given key. `dedupeKey` null = no idempotency check.
   */
  async nodesForWithDedupe(user: UserKey, dedupeKey: string | null, ttlMs: number): Promise<{ fresh: boolean; nodes: string[] }> {
    if (dedupeKey === null) return { fresh: true, nodes: await this.nodesFor(user) };
    const r = (await NODES_DEDUPE.run(this.#client, [this.#keys.userNodes(user), this.#keys.userDedupe(user, dedupeKey)], [Math.max(1, Math.ceil(ttlMs))])) as [number, ...string[]];
    if (Number(r[0]) !== 1) return { fresh: false, nodes: [] };
    return { fresh: true, nodes: this.#usable(r.slice(1) as string[]) };
  }

  /** `nodes` without those known dead: for lookups made outside this class (the publish script with the history append). */
  liveOf(nodes: string[]): string[] {
    return this.#usable(nodes);
  }

  async countFor(user: UserKey): Promise<number> {
    const counts = await this.#client.hgetall(this.#keys.userNodes(user));
    let n = 0;
    for (const [node, c] of Object.entries(counts)) if (!this.#dead.has(node)) n += Number(c) || 0;
    return n;
  }

  async members(): Promise<NodeInfo[]> {
    await this.#refresh();
    return [...this.#infos.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Nodes known dead are dropped; a node not yet seen by a beat is newer than it, so kept. */
  #usable(nodes: string[]): string[] {
    const out: string[] = [];
    let unknown = false;
    for (const n of nodes) {
      if (this.#dead.has(n)) continue;
      if (!this.#live.has(n)) unknown = true;
      out.push(n);
    }
    // Rate-limited: a stray unknown id must not turn every lookup into a heartbeat.
    if (unknown && Date.now() - this.#lastRefresh > 250) this.#kick();
    return out;
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#kick(), this.#heartbeatMs);
    this.#timer.unref();
  }

  /** Beats now, or right after the beat in progress. */
  #kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#running = this.#beat()
      .then(
        () => {
          if (this.#beatFailing) this.#log?.info({ nodeId: this.nodeId }, 'registry heartbeat works again');
          this.#beatFailing = false;
          // A 'ready' that arrived during this beat asks for another re-assertion first.
          if (!this.#reassertAll) this.#registered = true;
        },
        (err: unknown) => {
          this.#registered = false;
          if (!this.#beatFailing) this.#log?.warn({ nodeId: this.nodeId, err: String(err) }, 'registry heartbeat failed; retrying');
          this.#beatFailing = true;
        },
      )
      .finally(() => {
        this.#running = null;
        if (this.#again) {
          this.#again = false;
          this.#kick();
        } else this.#schedule();
      });
  }

  async #beat(): Promise<void> {
    const now = Date.now();
    const stats = this.#stats(now);
    const first = this.#beats++ === 0;
    const [old, shardLost] = await Promise.all([
      this.#client.set(this.#keys.nodeAlive(this.nodeId), JSON.stringify(stats), 'PX', this.#ttlMs, 'GET'),
      this.#shardLost(),
    ]);
    await this.#client.zadd(this.#keys.nodeIndex(), now, this.nodeId);
    if (old !== null && !first) {
      const prev = parseAlive(old);
      if (prev && prev.instance !== this.#instance) {
        this.#log?.warn({ nodeId: this.nodeId }, 'another process is heart-beating with this node id; node ids must be unique');
      }
    }
    if ((old === null && !first) || shardLost || this.#reassertAll) {
      this.#reassertAll = false;
      if (old === null && !first) this.#log?.warn({ nodeId: this.nodeId, users: this.#own.size }, 'liveness key was missing (redis restarted or this node was presumed dead); re-registering connections');
      else if (shardLost) this.#log?.warn({ nodeId: this.nodeId, users: this.#own.size }, 'a Redis Cluster primary lost this node\'s canary (restarted empty?); re-registering connections');
      await this.#reassert();
    }
    await this.#retryRemovals();
    await this.#refresh(stats);
  }

  /**
   * Redis Cluster only: refreshes one canary key per primary (one parallel SET … GET each) and
   * says whether a canary written before has vanished. Slots move, so the key for a primary is
   * re-picked whenever its slot no longer belongs to that primary.
   */
  async #shardLost(): Promise<boolean> {
    if (!isCluster(this.#client)) return false;
    const slots = this.#client.slots;
    const primaries = new Set<string>();
    for (const owners of slots) if (owners?.[0]) primaries.add(owners[0]);
    for (const [primary, key] of this.#canaries) if (slots[keySlot(key)]?.[0] !== primary) this.#canaries.delete(primary);
    for (const primary of primaries) {
      if (this.#canaries.has(primary)) continue;
      // A few tries on average: each i hashes to a uniformly random slot.
      for (let i = 0; i < 100_000; i++) {
        const key = this.#keys.nodeShardCanary(this.nodeId, i);
        if (slots[keySlot(key)]?.[0] === primary) {
          this.#canaries.set(primary, key);
          break;
        }
      }
    }
    const keys = [...this.#canaries.values()];
    const olds = await Promise.all(keys.map((k) => this.#client.set(k, this.#instance, 'PX', this.#ttlMs, 'GET')));
    let lost = false;
    keys.forEach((k, i) => {
      if (olds[i] === null && this.#canariesWritten.has(k)) lost = true;
      this.#canariesWritten.add(k);
    });
    return lost;
  }

  #stats(now: number): AliveValue {
    const byTransport: Record<string, number> = {};
    let connections = 0;
    for (const conns of this.#own.values()) {
      for (const e of conns.values()) {
        connections++;
        byTransport[e.transport] = (byTransport[e.transport] ?? 0) + 1;
      }
    }
    return { instance: this.#instance, lastSeen: now, connections, byTransport };
  }

  async #reassert(): Promise<void> {
    const users = [...this.#own.keys()];
    for (let i = 0; i < users.length; i += 1000) {
      await this.#client.sadd(this.#keys.nodeUsers(this.nodeId), ...users.slice(i, i + 1000));
    }
    await inBatches(users, async (user) => {
      const conns = this.#own.get(user);
      if (!conns) return;
      const args: string[] = [this.nodeId];
      for (const e of conns.values()) args.push(e.connectionId, JSON.stringify(e));
      await REASSERT.run(this.#client, [this.#keys.userConnections(user), this.#keys.userNodes(user)], args);
    });
  }

  async #retryRemovals(): Promise<void> {
    for (const [user, ids] of [...this.#failedRemovals]) {
      for (const id of [...ids]) {
        await REMOVE.run(this.#client, [this.#keys.userConnections(user), this.#keys.userNodes(user)], [id]);
        ids.delete(id);
      }
      this.#failedRemovals.delete(user);
      await this.#settle(user);
    }
  }

  /** Reads the index and every member's liveness; starts reaping the dead. */
  async #refresh(ownStats?: AliveValue): Promise<void> {
    const now = Date.now();
    const index = await this.#client.zrange(this.#keys.nodeIndex(), 0, -1);
    const others = index.filter((n) => n !== this.nodeId);
    const values = await Promise.all(others.map((n) => this.#client.get(this.#keys.nodeAlive(n))));
    const live = new Set<string>([this.nodeId]);
    const infos = new Map<string, NodeInfo>();
    const self = ownStats ?? this.#stats(now);
    infos.set(this.nodeId, { nodeId: this.nodeId, lastSeen: self.lastSeen, connections: self.connections, byTransport: self.byTransport });
    others.forEach((nodeId, i) => {
      const raw = values[i];
      if (raw === null || raw === undefined) {
        if (!this.#dead.has(nodeId)) this.#dead.set(nodeId, now);
        this.#reapDead(nodeId);
        return;
      }
      const v = parseAlive(raw);
      live.add(nodeId);
      this.#dead.delete(nodeId);
      infos.set(nodeId, { nodeId, lastSeen: v?.lastSeen ?? 0, connections: v?.connections ?? 0, byTransport: v?.byTransport ?? {} });
    });
    for (const [n, since] of this.#dead) if (now - since > DEAD_MEMORY_MS && !index.includes(n)) this.#dead.delete(n);
    this.#live = live;
    this.#infos = infos;
    this.#lastRefresh = now;
  }

  /** One survivor at a time removes a dead node's entries; runs beside the heartbeat, not in it. */
  #reapDead(nodeId: string): void {
    if (this.#reaping.has(nodeId) || this.#stopped) return;
    this.#reaping.add(nodeId);
    void (async () => {
      const lock = this.#keys.nodeReapLock(nodeId);
      const got = await this.#client.set(lock, this.nodeId, 'PX', REAP_LOCK_MS, 'NX');
      if (got !== 'OK') return;
      try {
        const removed = await this.#reapUsers(nodeId);
        if ((await this.#client.exists(this.#keys.nodeAlive(nodeId))) === 1) {
          // It came back while we reaped: make it re-assert whatever we just removed.
          await this.#client.del(this.#keys.nodeAlive(nodeId));
        } else {
          await this.#client.zrem(this.#keys.nodeIndex(), nodeId);
        }
        this.#log?.info({ deadNode: nodeId, removed }, 'removed the registry entries of a dead node');
      } finally {
        await this.#client.del(lock);
      }
    })()
      .catch((err: unknown) => this.#log?.warn({ deadNode: nodeId, err: String(err) }, 'reaping a dead node failed; will retry'))
      .finally(() => this.#reaping.delete(nodeId));
  }

  /** Removes `nodeId`'s entries from every user in its set (plus `extra`); returns how many. */
  async #reapUsers(nodeId: string, extra: readonly UserKey[] = []): Promise<number> {
    const setKey = this.#keys.nodeUsers(nodeId);
    const users = new Set([...(await this.#client.smembers(setKey)), ...extra]);
    let removed = 0;
    await inBatches([...users], async (user) => {
      removed += Number(await REAP.run(this.#client, [this.#keys.userConnections(user), this.#keys.userNodes(user)], [nodeId]));
    });
    await this.#client.del(setKey);
    return removed;
  }
}

function parseAlive(raw: string): AliveValue | null {
  try {
    const v = JSON.parse(raw) as AliveValue;
    return typeof v === 'object' && v !== null ? v : null;
  } catch {
    return null;
  }
}

/** Runs `fn` over `items`, at most PARALLEL at a time (one pipeline-sized burst per batch). */
async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL) await Promise.all(items.slice(i, i + PARALLEL).map(fn));
}
