/**
 * The grammar of `tidings.redis.url`. Three shapes:
 *   redis://[user:pass@]host[:port][/db]      standalone (rediss:// = TLS)
 *   redis+sentinel://[user:pass@]h:p[,h:p…]/<masterName>[?db=N&sentinelPassword=…]   Sentinel
 *   host:port[,host:port…]  or  redis://h:p,redis://h:p   Redis Cluster seed list
 * A bare `host:port` without a scheme is a (one-seed) Cluster seed list.
 * Passwords never appear in an error message.
 */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type RedisTarget =
  | { readonly kind: 'standalone'; readonly host: string; readonly port: number; readonly tls: boolean; readonly username?: string; readonly password?: string; readonly db: number }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string; readonly username?: string; readonly password?: string; readonly sentinelPassword?: string; readonly db: number }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[]; readonly tls: boolean; readonly username?: string; readonly password?: string };

const FORMS =
  'expected redis://[user:pass@]host[:port][/db], rediss://…, redis+sentinel://[:pass@]host:port[,host:port…]/<masterName>[?db=N], or a Redis Cluster seed list host:port[,host:port…]';
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
