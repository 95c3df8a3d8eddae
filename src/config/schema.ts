import { proxyEntryProblem } from '../http/client-ip.js';
import { advertiseUrlProblem } from '../cluster/advertise-url.js';
import { publicUrlProblem } from '../http/origin-policy.js';

/**
 * Every configuration key tidings knows, with its type and its one default.
 * `cascade` keys may be set per context set, context and user; the rest are server-wide.
 * `reloadable` keys take effect on reload; changing another key logs that a restart is needed.
 */
export type ValueType = 'string' | 'secret' | 'int' | 'bool' | 'list';

interface Spec<T extends ValueType, D> {
  readonly type: T;
  readonly default: D;
  readonly reloadable: boolean;
  readonly cascade: boolean;
  readonly doc: string;
  readonly min?: number;
  readonly max?: number;
  /** A string key that takes one of these words only (compared case-insensitively, kept lower-case). */
  readonly oneOf?: readonly string[];
  /** Why a value (each item, for a list) is not acceptable, or null; beyond what the type says. */
  readonly check?: (value: string) => string | null;
}

const str = (def: string, doc: string, o: { reloadable?: boolean; cascade?: boolean; check?: (value: string) => string | null } = {}): Spec<'string', string> => ({
  type: 'string', default: def, reloadable: o.reloadable ?? false, cascade: o.cascade ?? false, doc, ...(o.check ? { check: o.check } : {}),
});
const oneOf = (def: string, words: readonly string[], doc: string, o: { reloadable?: boolean; cascade?: boolean } = {}): Spec<'string', string> => ({
  type: 'string', default: def, oneOf: words, reloadable: o.reloadable ?? false, cascade: o.cascade ?? false, doc,
});
const secret = (doc: string): Spec<'secret', string> => ({ type: 'secret', default: '', reloadable: true, cascade: false, doc });
const int = (def: number, min: number, max: number, doc: string, o: { reloadable?: boolean; cascade?: boolean } = {}): Spec<'int', number> => ({
  type: 'int', default: def, min, max, reloadable: o.reloadable ?? false, cascade: o.cascade ?? false, doc,
});
const bool = (def: boolean, doc: string, o: { reloadable?: boolean; cascade?: boolean } = {}): Spec<'bool', boolean> => ({
  type: 'bool', default: def, reloadable: o.reloadable ?? false, cascade: o.cascade ?? false, doc,
});
const list = (doc: string, o: { reloadable?: boolean; check?: (item: string) => string | null } = {}): Spec<'list', readonly string[]> => ({
  type: 'list', default: [], reloadable: o.reloadable ?? false, cascade: false, doc, ...(o.check ? { check: o.check } : {}),
});

export const SCHEMA = {
  // The reference deployment's websockets.properties keys, same names and defaults.
  'com.openexchange.websockets.enabled': bool(true, 'Allow WebSocket upgrades for the user. False keeps polling, long-poll and SSE working.', { reloadable: true, cascade: true }),
  'com.openexchange.websockets.grizzly.remote.delayDuration': int(1000, 0, 3_600_000, 'ms a remote delivery is held for coalescing; each further message re-arms it.', { reloadable: true }),
  'com.openexchange.websockets.grizzly.remote.maxDelayDuration': int(3000, 0, 3_600_000, 'ms cap on holding a remote delivery, counted from its first message.', { reloadable: true }),
  'com.openexchange.websockets.grizzly.remote.timerFrequency': int(500, 1, 3_600_000, 'ms between checks of the remote-delivery buffer.', { reloadable: true }),

  'tidings.http.host': str('127.0.0.1', 'Listen address.'),
  'tidings.http.port': int(8009, 0, 65535, 'Listen port; 0 = any free port (the bound port is logged).'),
  'tidings.http.allowedOrigins': list('Comma-separated Origins allowed to open sockets, besides the server\'s own.', { reloadable: true }),
  'tidings.http.trustedProxies': list('Comma-separated IPs and CIDRs (IPv4, IPv6) of the proxies in front of tidings. Their X-Forwarded-For and X-Forwarded-Host are believed: the client IP is the rightmost X-Forwarded-For address that is not one of them. Empty = trust no one (the TCP peer is the client).', { reloadable: true, check: proxyEntryProblem }),
  'tidings.http.publicUrl': list('Comma-separated public origins of this service as browsers see it (https://mail.example.com), counted as the server\'s own origin besides the Host header\'s.', { reloadable: true, check: publicUrlProblem }),
  'tidings.http.maxBodyBytes': int(65536, 1024, 16_777_216, 'Largest accepted request body in bytes; larger is 413.'),
  'tidings.http.headersTimeoutMs': int(60_000, 1000, 300_000, 'Longest time a client may take to send its request headers, then 408 (a slow-loris guard, as nginx\'s client_header_timeout).'),
  'tidings.node.id': str('', 'This node\'s id in the cluster; empty = generated at start.'),
  'tidings.redis.url': str('', 'Empty = embedded in-memory backends (single node). redis://, rediss://, redis+sentinel://…, or a comma-separated Redis Cluster seed list.'),
  'tidings.redis.prefix': str('tidings:', 'Prefix of every Redis key and channel.'),
  'tidings.redis.tlsCaFile': str('', 'PEM file of the CA that signed the Redis server certificate (rediss://), relative to the config directory; empty = the system CAs.'),
  'tidings.push.token': secret('Bearer token for POST /api/push; empty = that endpoint answers 403.'),
  'tidings.push.maxDepth': int(32, 1, 512, 'Deepest nesting of objects and arrays in a published event\'s data (or in each of its args; a flat object is 1); deeper is 400 TIDINGS_TOO_DEEP.', { reloadable: true }),
  'tidings.notify.login': secret('Basic-auth login Dovecot uses for the notify endpoint; empty = it answers 403.'),
  'tidings.notify.password': secret('Basic-auth password Dovecot uses for the notify endpoint.'),
  'tidings.admin.token': secret('Bearer token for the /api/admin routes over HTTP (remote use); empty = they answer 403 over HTTP. The local admin socket needs none.'),
  'tidings.admin.socket': str('run/admin.sock', 'UNIX socket on which the CLI on this machine reaches the node without a token; its file permissions are the access control. Relative to the config directory; empty = none. A second node on the same machine needs its own.'),
  'tidings.admin.socketGroupAccess': bool(false, 'Let the server user\'s group use the admin socket too (mode 0660 instead of 0600).'),
  'tidings.session.lifetimeSeconds': int(3600, 10, 31_536_000, 'Session lifetime: login and every new connection slide it forward, an open socket does not; when it lapses, its sockets on every node are closed.', { reloadable: true }),
  'tidings.session.cookieSecure': bool(false, 'Mark the secret cookie Secure (set true behind HTTPS).', { reloadable: true }),
  'tidings.session.cookieSameSite': str('Lax', 'SameSite of the secret cookie: Strict, Lax or None (None needs HTTPS; use it when allowedOrigins are on other sites).', { reloadable: true }),
  'tidings.session.ipCheck': bool(false, 'Refuse sockets from another client IP than the login\'s.', { reloadable: true, cascade: true }),
  'tidings.login.maxFailuresPerIp': int(100, 1, 1_000_000, 'Failed logins allowed per client IP (IPv6: per /64) across logins within the window; past it, a wrong password from that IP on an untrusted device gets 429 instead of 401, while a correct one still logs in. A device trusted for the login (see deviceKey) is exempt.', { reloadable: true }),
  'tidings.login.maxFailuresPerLogin': int(5, 1, 1_000_000, 'Failed logins allowed per login name from any IP within the window; past it, that login from untrusted devices gets 429, while browsers that logged in as it before (device cookie) still can. Also the allowance of one trusted device\'s own failures.', { reloadable: true }),
  'tidings.login.failureWindowSeconds': int(300, 1, 86_400, 'Window over which failed logins are counted: an allowance is used up at once and refills evenly over the window. Counts are per node.', { reloadable: true }),
  'tidings.login.maxFailuresPerIpLogin': int(5, 1, 1_000_000, 'Failed logins allowed for one login from one client IP within the window, then 429 for untrusted devices there.', { reloadable: true }),
  'tidings.login.deviceKey': secret('Key that signs device cookies (tidings-device-*): a browser that logged in as a login gets one, and is exempt from that login\'s lockout. Use the same long random value on every node; empty = a random key per process (cookies then count only on the node that issued them, until it restarts).'),
  'tidings.login.deviceCookieDays': int(180, 1, 3650, 'How long a device cookie stays valid; each successful login renews it.', { reloadable: true }),
  'tidings.login.maxTracked': int(100_000, 100, 10_000_000, 'Failure counters (IPs, IP+login pairs, logins, devices) remembered per node; past it the least recently failed is forgotten.', { reloadable: true }),
  'tidings.connections.maxPerUser': int(8, 1, 10_000, 'Open connections allowed per user across the cluster, then 429.', { reloadable: true, cascade: true }),
  'tidings.connections.maxQueuedBytes': int(1_048_576, 16_384, 1_073_741_824, 'Bytes of events one connection may have waiting to be sent (Socket.IO polling buffers included); a slower reader is closed (WebSocket close 4429, Socket.IO transport closed) and reconnects.', { reloadable: true }),
  'tidings.socketio.pingIntervalMs': int(25000, 1000, 600_000, 'Socket.IO heartbeat interval.'),
  'tidings.socketio.pingTimeoutMs': int(20000, 1000, 600_000, 'Socket.IO heartbeat timeout.'),
  'tidings.websocket.pingIntervalMs': int(25000, 100, 600_000, 'How often a plain WebSocket (/websockets/…) is pinged; a peer that has not answered the previous ping by the next one is closed. Keep it below every proxy\'s idle timeout.'),
  'tidings.dedupe.windowSeconds': int(300, 1, 604_800, 'How long an idempotency key is remembered.', { reloadable: true }),
  'tidings.longpoll.holdSeconds': int(40, 1, 600, 'How long a long-poll is held open without events before 304.', { reloadable: true }),
  'tidings.history.size': int(100, 0, 100_000, 'Events kept per user, so that a client on any transport resumes from its last offset; 0 keeps none (offsets still count).', { reloadable: true }),
  'tidings.history.ttlSeconds': int(600, 1, 604_800, 'Age after which an event leaves the history; resuming from before it is "not recovered".', { reloadable: true }),
  'tidings.sse.heartbeatMs': int(25000, 1000, 600_000, 'ms between comment lines on an idle SSE stream, below a proxy\'s read timeout.', { reloadable: true }),
  'tidings.shutdown.graceMs': int(10000, 0, 120_000, 'On SIGTERM (or SIGINT), the most a node takes to stop: new requests get 503 at once, requests in flight are answered, every socket gets what was accepted for it and is then closed with going-away; whatever is still open at the end is cut, and the process exits 0. Keep it below the orchestrator\'s kill timeout (Kubernetes: terminationGracePeriodSeconds, 30 s by default).'),
  'tidings.shutdown.reconnectSpreadMs': int(10000, 0, 600_000, 'On shutdown each socket is told to wait a random delay from 0 to this before it reconnects (plain WebSocket: close reason \'server shutting down; reconnectAfterMs=N\'; Socket.IO: event server:restart {reconnectAfterMs}), so a node\'s clients do not all come back in the same second.', { reloadable: true }),
  'tidings.cluster.heartbeatMs': int(2000, 100, 60_000, 'Node liveness heartbeat period.'),
  'tidings.cluster.advertiseUrl': str('', 'How the other nodes reach this one (http://10.0.0.5:8009), for relaying Engine.IO polling requests to the node that holds the session. Empty = the bound address (with a wildcard host, this machine\'s first non-loopback IPv4 address).', { check: advertiseUrlProblem }),
  'tidings.cluster.secret': secret('Key the nodes sign relayed requests with; the same on every node. Empty = derived from tidings.admin.token; both empty = no relay (polling then needs balancer affinity).'),
  'tidings.cluster.livenessTtlMs': int(10000, 500, 300_000, 'A node whose heartbeat is older than this is dead.'),
  'tidings.remote.maxPending': int(10000, 1, 10_000_000, 'Remote batches kept while Redis is unreachable; overflow is dropped and counted.', { reloadable: true }),
  'tidings.config.watch': bool(true, 'Reload when a file in the config directory changes.'),
  'tidings.log.level': oneOf('info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'fatal, error, warn, info, debug, trace or silent; a reload applies it to every component\'s logger.', { reloadable: true }),
  'tidings.diag.enabled': bool(true, 'Serve the self-test routes /api/diag/… and /websockets/tidings-diag that `tidings diag URL` uses through the balancer (bounded: a few at a time, at most 300 s each).', { reloadable: true }),
} as const;

export type Schema = typeof SCHEMA;
export type ConfigKey = keyof Schema;
type TypeOf<T extends ValueType> = T extends 'int' ? number : T extends 'bool' ? boolean : T extends 'list' ? readonly string[] : string;
export type Settings = { readonly [K in ConfigKey]: TypeOf<Schema[K]['type']> };
export type KeySpec = Spec<ValueType, unknown>;

export function specOf(key: string): KeySpec | undefined {
  return Object.prototype.hasOwnProperty.call(SCHEMA, key) ? (SCHEMA as Record<string, KeySpec>)[key] : undefined;
}

export function envNameOf(key: string): string {
  return key.toUpperCase().replace(/\./g, '_');
}

export type Coerced = { ok: true; value: string | number | boolean | readonly string[] } | { ok: false; expected: string };

/** Turns the raw text of a value into its typed value, or says what was expected. */
/** A string's (or secret's) own check beyond its type; an empty value is always fine. */
function checked(spec: KeySpec, raw: string): { ok: true; value: string } | { ok: false; expected: string } {
  const problem = raw === '' ? null : spec.check?.(raw);
  return problem ? { ok: false, expected: `a valid value (${problem})` } : { ok: true, value: raw };
}

export function coerce(spec: KeySpec, raw: string): Coerced {
  const text = raw.trim();
  switch (spec.type) {
    case 'string':
      if (spec.oneOf) {
        const word = text.toLowerCase();
        return spec.oneOf.includes(word) ? { ok: true, value: word } : { ok: false, expected: `one of ${spec.oneOf.join(', ')}` };
      }
      return checked(spec, raw);
    case 'secret':
      return checked(spec, raw);
    case 'bool':
      if (/^(true|yes|on)$/i.test(text)) return { ok: true, value: true };
      if (/^(false|no|off)$/i.test(text)) return { ok: true, value: false };
      return { ok: false, expected: 'a boolean (true or false)' };
    case 'int': {
      if (!/^-?\d+$/.test(text)) return { ok: false, expected: `an integer from ${spec.min} to ${spec.max}` };
      const n = Number(text);
      if (!Number.isSafeInteger(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        return { ok: false, expected: `an integer from ${spec.min} to ${spec.max}` };
      }
      return { ok: true, value: n };
    }
    case 'list': {
      const items = text === '' ? [] : text.split(',').map((s) => s.trim()).filter((s) => s !== '');
      for (const item of items) {
        const problem = spec.check?.(item);
        if (problem) return { ok: false, expected: `a comma-separated list (${problem})` };
      }
      return { ok: true, value: Object.freeze(items) };
    }
  }
}
