import type { AdmitResult, ConnectionEntry, ConnectionRegistry, NodeInfo } from '../../ports/connection-registry.js';
import type { TransportKind, UserKey } from '../../domain/types.js';
import { RedisKeys } from './keys.js';
import type { LogLike } from '../log-like.js';
import type { RedisClient } from './redis-client.js';
import { named } from './redis-errors.js';
import { RedisMembership } from './redis-membership.js';
import { ADMIT, inBatches, reapNodeEntries, REASSERT, REMOVE, REPLACE } from './redis-registry-scripts.js';

export interface RedisConnectionRegistryOptions {
  readonly prefix?: string;
  readonly nodeId: string;
  /** ms between heartbeats. Default 2000. */
  readonly heartbeatMs?: number;
  /** ms a node stays live without a heartbeat. Default 10000. */
  readonly livenessTtlMs?: number;
  readonly log?: LogLike;
  /** This node's address for the other nodes, read at every beat (it is known once the node listens). Default: none. */
  readonly advertiseUrl?: () => string;
}

/**
 * The cluster-wide registry on Redis: connection entries (admit, remove, counts), with this
 * node's own entries also kept in memory so that they can be written again whenever Redis lost
 * them. Who is alive, and cleaning up after the dead, is `RedisMembership`'s job; the scripts
 * are in redis-registry-scripts.ts.
 *
 * Node ids must be unique: start() removes entries left under this id by a previous life.
 */
export class RedisConnectionRegistry implements ConnectionRegistry {
  readonly nodeId: string;
  /** Shared with the publish lookup, which filters by the same live/dead view. */
  readonly membership: RedisMembership;
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #log?: LogLike;
  readonly #advertiseUrl: () => string;

  readonly #own = new Map<UserKey, Map<string, ConnectionEntry>>();
  readonly #pending = new Map<UserKey, number>();
  /** Removals that failed while Redis was unreachable; retried on each beat. */
  readonly #failedRemovals = new Map<UserKey, Set<string>>();
  #stopping: Promise<void> | null = null;

  constructor(client: RedisClient, opts: RedisConnectionRegistryOptions) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
    this.nodeId = opts.nodeId;
    this.#log = opts.log;
    this.#advertiseUrl = opts.advertiseUrl ?? (() => '');
    this.membership = new RedisMembership(
      client,
      { keys: this.#keys, nodeId: opts.nodeId, heartbeatMs: opts.heartbeatMs ?? 2000, livenessTtlMs: opts.livenessTtlMs ?? 10_000, log: opts.log },
      { users: () => this.#own.size, stats: () => this.#stats(), reassert: () => this.#reassert(), retryRemovals: () => this.#retryRemovals() },
    );
  }

  /** Cleans up a previous life of this node id, then beats once. Rejects when Redis is unreachable. */
  async start(): Promise<void> {
    const removed = await reapNodeEntries(this.#client, this.#keys, this.nodeId);
    if (removed > 0) this.#log?.info({ nodeId: this.nodeId, removed }, 'removed registry entries left by a previous run of this node');
    await this.membership.start();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.membership.halt();
    const users = [...this.#own.keys()];
    this.#own.clear();
    try {
      await reapNodeEntries(this.#client, this.#keys, this.nodeId, users);
      await this.membership.leave();
    } catch (err) {
      // The survivors clean up after livenessTtlMs instead.
      this.#log?.warn({ err: String(err) }, 'could not remove this node from the registry; survivors will');
    }
  }

  /** Test hook: stop heart-beating as a crashed process would, leaving everything in Redis. */
  crash(): void {
    void this.membership.halt();
    this.#own.clear();
    this.#stopping = Promise.resolve();
  }

  registered(): boolean {
    return this.membership.registered();
  }

  async admit(user: UserKey, entry: ConnectionEntry, cap: number): Promise<AdmitResult> {
    const mine = entry.nodeId === this.nodeId;
    if (mine) this.#pending.set(user, (this.#pending.get(user) ?? 0) + 1);
    try {
      // The user goes into this node's set before the entry exists, so a crash in between
      // can never leave an entry that no survivor knows to reap.
      if (mine && !this.#own.has(user)) await named(this.#client.sadd(this.#keys.nodeUsers(this.nodeId), user));
      const r = (await named(ADMIT.run(this.#client, [this.#keys.userConnections(user), this.#keys.userNodes(user)], [entry.connectionId, JSON.stringify(entry), entry.nodeId, cap, ...this.membership.deadNodes()]))) as [number, string, number];
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
      await named(REMOVE.run(this.#client, [this.#keys.userConnections(user), this.#keys.userNodes(user)], [connectionId]));
    } catch (err) {
      let set = this.#failedRemovals.get(user);
      if (!set) this.#failedRemovals.set(user, (set = new Set()));
      set.add(connectionId);
      throw err;
    }
    await this.#settle(user);
  }

  async setTransport(user: UserKey, connectionId: string, transport: TransportKind): Promise<void> {
    const conns = this.#own.get(user);
    const e = conns?.get(connectionId);
    if (!conns || !e) return;
    const next = { ...e, transport };
    conns.set(connectionId, next);
    await named(REPLACE.run(this.#client, [this.#keys.userConnections(user)], [connectionId, JSON.stringify(next)]));
  }

  /** Drops the user from this node's set once nothing of it is left or under way here. */
  async #settle(user: UserKey): Promise<void> {
    if (this.#own.has(user) || this.#pending.has(user) || this.#failedRemovals.get(user)?.size) return;
    await this.#client.srem(this.#keys.nodeUsers(this.nodeId), user).catch(() => {});
  }

  async countFor(user: UserKey): Promise<number> {
    const counts = await named(this.#client.hgetall(this.#keys.userNodes(user)));
    let n = 0;
    for (const [node, c] of Object.entries(counts)) if (!this.membership.isDead(node)) n += Number(c) || 0;
    return n;
  }

  members(): Promise<NodeInfo[]> {
    return named(this.membership.members());
  }

  #stats(): { connections: number; byTransport: Record<string, number>; advertiseUrl: string } {
    const byTransport: Record<string, number> = {};
    let connections = 0;
    for (const conns of this.#own.values()) {
      for (const e of conns.values()) {
        connections++;
        byTransport[e.transport] = (byTransport[e.transport] ?? 0) + 1;
      }
    }
    return { connections, byTransport, advertiseUrl: this.#advertiseUrl() };
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
}
