import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { LogLike } from '../log-like.js';
import { parseRedisUrl } from './redis-url.js';

/**
 * Builds the ioredis client for `tidings.redis.url` (its grammar: redis-url.ts).
 *
 * Failure policy (why the options below):
 * - Reconnect forever, backoff doubling from 100 ms, capped at 1 s: Redis coming back is noticed
 *   within a second, and a dead Redis costs one connect attempt per second.
 * - Commands fail fast while Redis is down, because readiness and the remote-delivery buffer
 *   decide on failures. Standalone/Sentinel: the offline queue stays on (commands issued during
 *   start-up or a sub-second blip wait for the connection), but `maxRetriesPerRequest: 1` makes
 *   ioredis reject queued commands after the second failed reconnect attempt, i.e. within ~2 s.
 *   Cluster: ioredis never bounds the Cluster-level queue, so it is switched off while the
 *   whole cluster is unreachable ('reconnecting') and on again at 'ready': commands issued
 *   during an outage fail at once (commands queued before the outage wait for the cluster).
 * - `commandTimeout` (5 s) so a hung (not closed) server fails commands too; not on blocking
 *   connections (see duplicateClient).
 * Passwords never appear in an error or log line.
 */
export type RedisClient = Redis | Cluster;

export interface ClientOptions {
  /** Names the connection (`CLIENT SETNAME tidings-<role>`) so operators and tests can tell connections apart. */
  readonly role?: string;
  readonly log?: LogLike;
  /** ms; 0 disables. Default 5000. */
  readonly commandTimeoutMs?: number;
  /** PEM of the CA to trust for rediss:// instead of the system CAs. */
  readonly tlsCa?: string;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 2000;

/** Reconnect delay for attempt `n` (1-based): 100, 200, 400, 800, then 1000 ms forever. */
export function backoffMs(n: number): number {
  return Math.min(100 * 2 ** Math.min(Math.max(n - 1, 0), 10), 1000);
}

const meta = new WeakMap<RedisClient, { log?: LogLike; role: string; lastError?: string }>();

/** The last connection error the client saw, to say why it is not ready. */
export function lastError(client: RedisClient): string | undefined {
  return meta.get(client)?.lastError;
}

function connectionName(role: string): string {
  return `tidings-${role}`.replace(/[^A-Za-z0-9_.:@-]/g, '_');
}

function retryStrategy(times: number): number {
  return backoffMs(times);
}

/** Sentinel failover: a write that reaches the demoted primary reconnects (to the new one) and is resent. */
function reconnectOnReadonly(err: Error): 2 | false {
  return err.message.startsWith('READONLY') ? 2 : false;
}

function nodeOptions(opts: ClientOptions, auth: { username?: string; password?: string }): RedisOptions {
  const timeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  return {
    ...auth,
    connectionName: connectionName(opts.role ?? 'main'),
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    // Commands issued in the same turn of the event loop go out in one write: on a busy node this
    // halves Redis CPU per event (bench/results/messaging.md). Off for blocking/subscriber duplicates.
    enableAutoPipelining: true,
    retryStrategy,
    ...(timeout > 0 ? { commandTimeout: timeout } : {}),
  };
}

/** Creates and connects a client; the caller owns it and closes it (`quit()`/`disconnect()`). */
export function createRedisClient(url: string, opts: ClientOptions = {}): RedisClient {
  const target = parseRedisUrl(url);
  let client: RedisClient;
  switch (target.kind) {
    case 'standalone':
      client = new Redis({
        ...nodeOptions(opts, { username: target.username, password: target.password }),
        host: target.host,
        port: target.port,
        db: target.db,
        ...(target.tls ? { tls: tlsOptions(opts) } : {}),
      });
      break;
    case 'sentinel':
      client = new Redis({
        ...nodeOptions(opts, { username: target.username, password: target.password }),
        sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: target.name,
        db: target.db,
        ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
        sentinelRetryStrategy: retryStrategy,
        // Reconnect as soon as the sentinels announce +switch-master instead of waiting for an error.
        failoverDetector: true,
        reconnectOnError: reconnectOnReadonly,
      });
      break;
    case 'cluster':
      client = new Cluster(
        target.nodes.map((n) => ({ host: n.host, port: n.port })),
        clusterOptions({ ...nodeOptions(opts, { username: target.username, password: target.password }), ...(target.tls ? { tls: tlsOptions(opts) } : {}) }, false),
      );
      break;
  }
  setUp(client, opts.log, opts.role ?? 'main');
  return client;
}

function tlsOptions(opts: ClientOptions): { ca?: string[] } {
  return opts.tlsCa ? { ca: [opts.tlsCa] } : {};
}

function clusterOptions(redisOptions: RedisOptions, sharded: boolean): ClusterOptions {
  return {
    redisOptions,
    enableAutoPipelining: redisOptions.enableAutoPipelining ?? false,
    clusterRetryStrategy: retryStrategy,
    enableOfflineQueue: true,
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    shardedSubscribers: sharded,
  };
}

function setUp(client: RedisClient, log: LogLike | undefined, role: string): void {
  const m: { log?: LogLike; role: string; lastError?: string } = { log, role };
  meta.set(client, m);
  // Always listen for 'error': ioredis prints unhandled errors to the console otherwise.
  // One line per outage, not one per reconnect attempt.
  let reported = false;
  client.on('error', (err: Error) => {
    m.lastError = err.message;
    if (reported) return;
    reported = true;
    log?.warn({ role, err: err.message }, 'redis connection error; reconnecting');
  });
  client.on('ready', () => {
    if (reported) log?.info({ role }, 'redis connection ready again');
    reported = false;
  });
  if (client instanceof Cluster) {
    // ioredis never bounds the Cluster-level queue, so it is switched off while the whole
    // cluster is unreachable (commands then fail at once) and on again when it is back. Not
    // off while ready: then a second command to a node connection that is still connecting
    // would be rejected too.
    const cluster = client;
    cluster.on('reconnecting', () => {
      cluster.options.enableOfflineQueue = false;
    });
    cluster.on('ready', () => {
      cluster.options.enableOfflineQueue = true;
    });
  }
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * A new connection with the same target, for a blocking reader (`blocking: true`: no command
 * timeout, as XREAD BLOCK waits on purpose) or a subscriber (`subscriber: true`: on a Cluster,
 * sharded subscribers so SSUBSCRIBE reaches the shard owning the channel). The caller owns it.
 */
export function duplicateClient(client: RedisClient, opts: { role?: string; blocking?: boolean; subscriber?: boolean } = {}): RedisClient {
  const parent = meta.get(client);
  const role = opts.role ?? `${parent?.role ?? 'main'}-dup`;
  const timeout = { ...(opts.blocking ? { commandTimeout: undefined } : {}), ...(opts.blocking || opts.subscriber ? { enableAutoPipelining: false } : {}) };
  let dup: RedisClient;
  if (client instanceof Cluster) {
    dup = client.duplicate([], {
      ...clusterOptions({ ...client.options.redisOptions, connectionName: connectionName(role), ...timeout }, opts.subscriber === true),
    });
  } else {
    dup = client.duplicate({ connectionName: connectionName(role), ...timeout });
  }
  setUp(dup, parent?.log, role);
  return dup;
}

/** Resolves when the client is ready, rejects after `timeoutMs`. */
export function whenReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
