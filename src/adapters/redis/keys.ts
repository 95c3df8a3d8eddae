import type { UserKey } from '../../domain/types.js';

/**
 * Every Redis key and channel name tidings uses, built from the one prefix
 * (`tidings.redis.prefix`, default `tidings:`). Nothing else in the code base spells a key.
 *
 * Hash tags (`{…}`) put the keys that one operation touches into one Redis Cluster slot:
 * - `{u:<userId>@<contextId>}`: everything about one user (connections, per-node counts,
 *   user-scoped idempotency keys), so admit / remove / the publish lookup are single-slot scripts;
 * - `{n:<nodeId>}`: everything about one node (liveness, its user set, reap lock, inbox).
 *
 * Layout (P = prefix):
 *   P s:<sessionId>            string  session JSON, expires with the session
 *   P {u:<user>}:c             hash    connectionId → ConnectionEntry JSON
 *   P {u:<user>}:n             hash    nodeId → number of the user's connections on that node
 *   P {u:<user>}:d:<key>       string  idempotency key, checked by the publish lookup with the nodes (one round trip)
 *   P {u:<user>}:h             stream  the user's event log: id `<ms>-<seq>`, fields b (body), p (path filter), s (source token)
 *   P {u:<user>}:hm            hash    the log's record: e (epoch), s (last seq), t (last append ms)
 *   P nodes                    zset    nodeId → epoch ms of its last heartbeat (membership index)
 *   P {n:<node>}:alive         string  liveness (PX livenessTtlMs), value = node stats JSON
 *   P {n:<node>}:users         set     users this node holds connections of (for reaping a dead node)
 *   P {n:<node>}:reap          string  lock: one survivor cleans up a dead node at a time (value: its holder's token)
 *   P {n:<node>}:inbox         stream  node-addressed bus messages
 *   P {n:<node>:<i>}:canary    string  Redis Cluster only: one per primary, to notice a primary that lost its data
 *   P config                   hash    `<ctx>/<user|''>/<key>` → StoredValue JSON
 *   P bus                      channel broadcast bus messages (sharded pub/sub on a Cluster)
 */
export class RedisKeys {
  readonly prefix: string;

  constructor(prefix = 'tidings:') {
    // A brace in the prefix would become (part of) the hash tag and break slot co-location.
    if (/[{}]/.test(prefix)) throw new Error(`tidings.redis.prefix must not contain '{' or '}' (got '${prefix}')`);
    this.prefix = prefix;
  }

  session(sessionId: string): string {
    return `${this.prefix}s:${sessionId}`;
  }

  userConnections(user: UserKey): string {
    return `${this.prefix}{u:${user}}:c`;
  }

  userNodes(user: UserKey): string {
    return `${this.prefix}{u:${user}}:n`;
  }

  userDedupe(user: UserKey, key: string): string {
    return `${this.prefix}{u:${user}}:d:${key}`;
  }

  nodeIndex(): string {
    return `${this.prefix}nodes`;
  }

  nodeAlive(nodeId: string): string {
    return `${this.prefix}{n:${nodeId}}:alive`;
  }

  nodeUsers(nodeId: string): string {
    return `${this.prefix}{n:${nodeId}}:users`;
  }

  nodeReapLock(nodeId: string): string {
    return `${this.prefix}{n:${nodeId}}:reap`;
  }

  /** `i` is picked so that the key lands on a given primary's slots. */
  nodeShardCanary(nodeId: string, i: number): string {
    return `${this.prefix}{n:${nodeId}:${i}}:canary`;
  }

  nodeInbox(nodeId: string): string {
    return `${this.prefix}{n:${nodeId}}:inbox`;
  }

  config(): string {
    return `${this.prefix}config`;
  }

  broadcastChannel(): string {
    return `${this.prefix}bus`;
  }

  userHistory(user: UserKey): string {
    return `${this.prefix}{u:${user}}:h`;
  }

  userHistoryMeta(user: UserKey): string {
    return `${this.prefix}{u:${user}}:hm`;
  }
}
