import { randomUUID } from 'node:crypto';
import keySlot from 'cluster-key-slot';
import type { NodeInfo } from '../../ports/connection-registry.js';
import type { RedisKeys } from './keys.js';
import type { LogLike } from '../log-like.js';
import { isCluster, type RedisClient } from './redis-client.js';
import { reapNodeEntries, RELEASE_LOCK } from './redis-registry-scripts.js';

/** What membership needs from this node's connection entries (kept by the registry). */
export interface LocalEntries {
  /** Users with entries here, for log lines. */
  users(): number;
  stats(): { connections: number; byTransport: Record<string, number>; advertiseUrl: string };
  /** Writes every entry of this node again (Redis lost them). */
  reassert(): Promise<void>;
  /** Retries the removals that failed while Redis was unreachable. */
  retryRemovals(): Promise<void>;
}

export interface RedisMembershipOptions {
  readonly keys: RedisKeys;
  readonly nodeId: string;
  readonly heartbeatMs: number;
  readonly livenessTtlMs: number;
  readonly log?: LogLike;
}

interface AliveValue {
  readonly instance: string;
  readonly lastSeen: number;
  readonly connections: number;
  readonly byTransport: Record<string, number>;
  readonly advertiseUrl?: string;
}

const REAP_LOCK_MS = 30_000;
const DEAD_MEMORY_MS = 10 * 60_000;

/**
 * Cluster membership on Redis: this node's heartbeat, the live/dead view every lookup filters by,
 * the canaries on a Redis Cluster, and the reaping of dead nodes.
 *
 * Liveness: every `heartbeatMs` the node writes `{n:<id>}:alive` with PX `livenessTtlMs` and
 * its stats, and stamps itself in the `nodes` index. The same beat reads the index and every
 * member's liveness key: that refreshes the in-memory live/dead sets which `usable` filters
 * by (no per-event liveness lookups). A node in the index whose liveness key is gone is dead:
 * one survivor (lock `{n:<id>}:reap`, released only by its holder) removes its entries user by
 * user, using the dead node's `{n:<id>}:users` set, then drops it from the index. Worst case
 * from a crash to clean-up: livenessTtlMs + heartbeatMs + the reap itself (≈ 12 s with the
 * defaults; the README promises ≤ 15 s).
 *
 * Self-healing: when the beat's `SET … GET` finds the liveness key missing (Redis restarted
 * empty, or the node was presumed dead and reaped), and on every 'ready' after a reconnect (a
 * Sentinel failover may lose the last writes), the node re-asserts all its entries. On a Redis
 * Cluster one primary can restart empty while the liveness key lives on another, so the beat also
 * keeps one canary key on every primary and re-asserts when one of them vanished. A survivor that
 * reaped a node which came back meanwhile deletes that node's liveness key, so it re-asserts once
 * more and nothing it re-added is lost.
 */
export class RedisMembership {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #nodeId: string;
  readonly #heartbeatMs: number;
  readonly #ttlMs: number;
  readonly #log?: LogLike;
  readonly #local: LocalEntries;
  /** Tells this process from another one heart-beating under the same node id; also the reap lock token. */
  readonly #instance = randomUUID();

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
  #beatFailing = false;
  /** Redis Cluster: primary address → this node's canary key on that primary's slots. */
  readonly #canaries = new Map<string, string>();
  readonly #canariesWritten = new Set<string>();
  /** See registered(): false from a dropped connection until a beat has re-asserted everything. */
  #registered = true;
  readonly #onReady = (): void => {
    this.#reassertAll = true;
    this.kick();
  };
  readonly #onClose = (): void => {
    this.#registered = false;
  };

  constructor(client: RedisClient, opts: RedisMembershipOptions, local: LocalEntries) {
    this.#client = client;
    this.#keys = opts.keys;
    this.#nodeId = opts.nodeId;
    this.#heartbeatMs = opts.heartbeatMs;
    this.#ttlMs = opts.livenessTtlMs;
    this.#log = opts.log;
    this.#local = local;
    if (this.#ttlMs <= this.#heartbeatMs) throw new Error('livenessTtlMs must be larger than heartbeatMs');
  }

  /** Beats once (rejects when Redis is unreachable), then on a timer. */
  async start(): Promise<void> {
    await this.#beat();
    this.#client.on('ready', this.#onReady);
    this.#client.on('close', this.#onClose);
    this.#schedule();
  }

  /** Stops beating; resolves when a beat in progress has settled. */
  async halt(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#client.off('ready', this.#onReady);
    this.#client.off('close', this.#onClose);
    await this.#running?.catch(() => {});
  }

  /** Leaves the cluster at once rather than after livenessTtlMs. */
  async leave(): Promise<void> {
    await Promise.all([
      this.#client.del(this.#keys.nodeAlive(this.#nodeId)),
      this.#client.zrem(this.#keys.nodeIndex(), this.#nodeId),
      ...[...this.#canaries.values()].map((k) => this.#client.del(k)),
    ]);
  }

  registered(): boolean {
    return this.#registered;
  }

  isDead(nodeId: string): boolean {
    return this.#dead.has(nodeId);
  }

  deadNodes(): IterableIterator<string> {
    return this.#dead.keys();
  }

  /** Nodes known dead are dropped; a node not yet seen by a beat is newer than it, so kept. */
  usable(nodes: string[]): string[] {
    const out: string[] = [];
    let unknown = false;
    for (const n of nodes) {
      if (this.#dead.has(n)) continue;
      if (!this.#live.has(n)) unknown = true;
      out.push(n);
    }
    // Rate-limited: a stray unknown id must not turn every lookup into a heartbeat.
    if (unknown && Date.now() - this.#lastRefresh > 250) this.kick();
    return out;
  }

  async members(): Promise<NodeInfo[]> {
    await this.#refresh();
    return [...this.#infos.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Beats now, or right after the beat in progress. */
  kick(): void {
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
          if (this.#beatFailing) this.#log?.info({ nodeId: this.#nodeId }, 'registry heartbeat works again');
          this.#beatFailing = false;
          // A 'ready' that arrived during this beat asks for another re-assertion first.
          if (!this.#reassertAll) this.#registered = true;
        },
        (err: unknown) => {
          this.#registered = false;
          if (!this.#beatFailing) this.#log?.warn({ nodeId: this.#nodeId, err: String(err) }, 'registry heartbeat failed; retrying');
          this.#beatFailing = true;
        },
      )
      .finally(() => {
        this.#running = null;
        if (this.#again) {
          this.#again = false;
          this.kick();
        } else this.#schedule();
      });
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.kick(), this.#heartbeatMs);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    const now = Date.now();
    const stats = this.#stats(now);
    const first = this.#beats++ === 0;
    const [old, shardLost] = await Promise.all([
      this.#client.set(this.#keys.nodeAlive(this.#nodeId), JSON.stringify(stats), 'PX', this.#ttlMs, 'GET'),
      this.#shardLost(),
    ]);
    await this.#client.zadd(this.#keys.nodeIndex(), now, this.#nodeId);
    if (old !== null && !first) {
      const prev = parseAlive(old);
      if (prev && prev.instance !== this.#instance) {
        this.#log?.warn({ nodeId: this.#nodeId }, 'another process is heart-beating with this node id; node ids must be unique');
      }
    }
    if ((old === null && !first) || shardLost || this.#reassertAll) {
      this.#reassertAll = false;
      const users = this.#local.users();
      if (old === null && !first) this.#log?.warn({ nodeId: this.#nodeId, users }, 'liveness key was missing (redis restarted or this node was presumed dead); re-registering connections');
      else if (shardLost) this.#log?.warn({ nodeId: this.#nodeId, users }, 'a Redis Cluster primary lost this node\'s canary (restarted empty?); re-registering connections');
      await this.#local.reassert();
    }
    await this.#local.retryRemovals();
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
        const key = this.#keys.nodeShardCanary(this.#nodeId, i);
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
    return { instance: this.#instance, lastSeen: now, ...this.#local.stats() };
  }

  /** Reads the index and every member's liveness; starts reaping the dead. */
  async #refresh(ownStats?: AliveValue): Promise<void> {
    const now = Date.now();
    const index = await this.#client.zrange(this.#keys.nodeIndex(), 0, -1);
    const others = index.filter((n) => n !== this.#nodeId);
    const values = await Promise.all(others.map((n) => this.#client.get(this.#keys.nodeAlive(n))));
    const live = new Set<string>([this.#nodeId]);
    const infos = new Map<string, NodeInfo>();
    const self = ownStats ?? this.#stats(now);
    infos.set(this.#nodeId, { nodeId: this.#nodeId, lastSeen: self.lastSeen, connections: self.connections, byTransport: self.byTransport, advertiseUrl: self.advertiseUrl ?? '' });
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
      infos.set(nodeId, { nodeId, lastSeen: v?.lastSeen ?? 0, connections: v?.connections ?? 0, byTransport: v?.byTransport ?? {}, advertiseUrl: typeof v?.advertiseUrl === 'string' ? v.advertiseUrl : '' });
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
      const got = await this.#client.set(lock, this.#instance, 'PX', REAP_LOCK_MS, 'NX');
      if (got !== 'OK') return;
      try {
        const removed = await reapNodeEntries(this.#client, this.#keys, nodeId);
        if ((await this.#client.exists(this.#keys.nodeAlive(nodeId))) === 1) {
          // It came back while we reaped: make it re-assert whatever we just removed.
          await this.#client.del(this.#keys.nodeAlive(nodeId));
        } else {
          await this.#client.zrem(this.#keys.nodeIndex(), nodeId);
        }
        this.#log?.info({ deadNode: nodeId, removed }, 'removed the registry entries of a dead node');
      } finally {
        // A reap that outlasted the lock must not release the next survivor's lock.
        await RELEASE_LOCK.run(this.#client, [lock], [this.#instance]);
      }
    })()
      .catch((err: unknown) => this.#log?.warn({ deadNode: nodeId, err: String(err) }, 'reaping a dead node failed; will retry'))
      .finally(() => this.#reaping.delete(nodeId));
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
