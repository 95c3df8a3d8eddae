import { createHash } from 'node:crypto';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/**
 * Builds the ioredis client for `tidings.redis.url`. Three shapes:
 *   redis://[user:pass@]host[:port][/db]      standalone (rediss:// = TLS)
 *   redis+sentinel://[user:pass@]h:p[,h:p…]/<masterName>[?db=N&sentinelPassword=…]   Sentinel
 *   host:port[,host:port…]  or  redis://h:p,redis://h:p   Redis Cluster seed list
 * A bare `host:port` without a scheme is a (one-seed) Cluster seed list.
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

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type RedisTarget =
  | { readonly kind: 'standalone'; readonly host: string; readonly port: number; readonly tls: boolean; readonly username?: string; readonly password?: string; readonly db: number }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string; readonly username?: string; readonly password?: string; readonly sentinelPassword?: string; readonly db: number }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[]; readonly tls: boolean; readonly username?: string; readonly password?: string };

export interface LogLike {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface ClientOptions {
  /** Names the connection (`CLIENT SETNAME tidings-<role>`) so operators and tests can tell connections apart. */
  readonly role?: string;
  readonly log?: LogLike;
  /** ms; 0 disables. Default 5000. */
  readonly commandTimeoutMs?: number;
  /** PEM of the CA to trust for rediss:// instead of the system CAs. */
  readonly tlsCa?: string;
}

const FORMS =
  'expected redis://[user:pass@]host[:port][/db], rediss://…, redis+sentinel://[:pass@]host:port[,host:port…]/<masterName>[?db=N], or a Redis Cluster seed list host:port[,host:port…]';
const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 2000;

/** Reconnect delay for attempt `n` (1-based): 100, 200, 400, 800, then 1000 ms forever. */
export function backoffMs(n: number): number {
  return Math.min(100 * 2 ** Math.min(Math.max(n - 1, 0), 10), 1000);
}

/** The url with any password replaced, for messages. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^/@,]*?):([^/@,]*)@/g, (_m, user: string) => `//${user}:***@`);
}

function fail(url: string, why: string): never {
  throw new Error(`invalid tidings.redis.url '${redactRedisUrl(url)}': ${why}; ${FORMS}`);
}

function parseHostPort(url: string, text: string, defaultPort?: number): HostPort {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/?#@,\s]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) fail(url, `'${text}' is not host:port`);
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port === undefined) fail(url, `'${text}' has no port`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(url, `port in '${text}' is out of range`);
  return { host, port };
}

function splitAuth(url: string, text: string): { auth?: { username?: string; password?: string }; rest: string } {
  const at = text.lastIndexOf('@');
  if (at < 0) return { rest: text };
  const userinfo = text.slice(0, at);
  const colon = userinfo.indexOf(':');
  let username: string | undefined;
  let password: string | undefined;
  try {
    username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon)) || undefined;
    password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1)) || undefined;
  } catch {
    fail(url, 'the user or password is not valid percent-encoding');
  }
  // `redis://secret@host` is the common way to give only a password (as redis-cli does).
  if (colon < 0 && username !== undefined) return { auth: { password: username }, rest: text.slice(at + 1) };
  return { auth: { username, password }, rest: text.slice(at + 1) };
}

function parseDb(url: string, text: string | undefined): number {
  if (text === undefined || text === '') return 0;
  if (!/^\d{1,5}$/.test(text)) fail(url, `database '${text}' is not a number`);
  return Number(text);
}

/** Parses `tidings.redis.url` without connecting. Throws an Error naming the expected forms. */
export function parseRedisUrl(url: string): RedisTarget {
  const text = url.trim();
  if (text === '') fail(url, 'it is empty');
  if (text.startsWith('redis+sentinel://')) return parseSentinel(url, text.slice('redis+sentinel://'.length));
  if (text.includes(',') || !/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return parseCluster(url, text);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)![1].toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss') fail(url, `unknown scheme '${scheme}'`);
  const m = /^[^:]+:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?(.*))?$/.exec(text);
  if (!m) fail(url, 'it cannot be parsed');
  if (m[3] !== undefined && m[3] !== '') fail(url, 'standalone urls take no query parameters');
  const { auth, rest } = splitAuth(url, m[1]);
  const { host, port } = parseHostPort(url, rest, 6379);
  return { kind: 'standalone', host, port, tls: scheme === 'rediss', db: parseDb(url, m[2]), ...auth };
}

function parseSentinel(url: string, rest: string): RedisTarget {
  const m = /^([^/?#]*)\/([^/?#]+)(?:\?(.*))?$/.exec(rest);
  if (!m) fail(url, 'the master name is missing');
  const { auth, rest: hosts } = splitAuth(url, m[1]);
  const sentinels = hosts.split(',').map((h) => parseHostPort(url, h.trim(), 26379));
  let db = 0;
  let sentinelPassword: string | undefined;
  for (const [k, v] of new URLSearchParams(m[3] ?? '')) {
    if (k === 'db') db = parseDb(url, v);
    else if (k === 'sentinelPassword') sentinelPassword = v;
    else fail(url, `unknown query parameter '${k}' (allowed: db, sentinelPassword)`);
  }
  return { kind: 'sentinel', sentinels, name: decodeURIComponent(m[2]), db, ...auth, ...(sentinelPassword ? { sentinelPassword } : {}) };
}

function parseCluster(url: string, text: string): RedisTarget {
  let tls: boolean | undefined;
  let auth: { username?: string; password?: string } | undefined;
  const nodes = text.split(',').map((part) => {
    let item = part.trim();
    const sm = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(item);
    const secure = sm ? sm[1].toLowerCase() === 'rediss' : false;
    if (sm && sm[1].toLowerCase() !== 'redis' && !secure) fail(url, `unknown scheme '${sm[1]}' in the seed list`);
    if (tls !== undefined && tls !== secure) fail(url, 'the seed list mixes redis:// and rediss://');
    tls = secure;
    if (sm) item = sm[2].replace(/\/$/, '');
    const split = splitAuth(url, item);
    if (split.auth) auth = split.auth;
    return parseHostPort(url, split.rest);
  });
  return { kind: 'cluster', nodes, tls: tls ?? false, ...auth };
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

/**
 * A Lua script run by EVALSHA, falling back to EVAL once when the server does not know it
 * (first use, or Redis restarted empty). Injected clients are not modified (no defineCommand).
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
