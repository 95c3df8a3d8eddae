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
}

const str = (def: string, doc: string, o: { reloadable?: boolean; cascade?: boolean } = {}): Spec<'string', string> => ({
  type: 'string', default: def, reloadable: o.reloadable ?? false, cascade: o.cascade ?? false, doc,
});
const secret = (doc: string): Spec<'secret', string> => ({ type: 'secret', default: '', reloadable: true, cascade: false, doc });
const int = (def: number, min: number, max: number, doc: string, o: { reloadable?: boolean; cascade?: boolean } = {}): Spec<'int', number> => ({
  type: 'int', default: def, min, max, reloadable: o.reloadable ?? false, cascade: o.cascade ?? false, doc,
});
const bool = (def: boolean, doc: string, o: { reloadable?: boolean; cascade?: boolean } = {}): Spec<'bool', boolean> => ({
  type: 'bool', default: def, reloadable: o.reloadable ?? false, cascade: o.cascade ?? false, doc,
});
const list = (doc: string, o: { reloadable?: boolean } = {}): Spec<'list', readonly string[]> => ({
  type: 'list', default: [], reloadable: o.reloadable ?? false, cascade: false, doc,
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
  'tidings.http.trustProxy': bool(false, 'Take the client IP from X-Forwarded-For (only behind a trusted balancer).'),
  'tidings.http.maxBodyBytes': int(65536, 1024, 16_777_216, 'Largest accepted request body in bytes; larger is 413.'),
  'tidings.node.id': str('', 'This node\'s id in the cluster; empty = generated at start.'),
  'tidings.redis.url': str('', 'Empty = embedded in-memory backends (single node). redis://, rediss://, redis+sentinel://…, or a comma-separated Redis Cluster seed list.'),
  'tidings.redis.prefix': str('tidings:', 'Prefix of every Redis key and channel.'),
  'tidings.redis.tlsCaFile': str('', 'PEM file of the CA that signed the Redis server certificate (rediss://), relative to the config directory; empty = the system CAs.'),
  'tidings.push.token': secret('Bearer token for POST /api/push; empty = that endpoint answers 403.'),
  'tidings.notify.login': secret('Basic-auth login Dovecot uses for the notify endpoint; empty = it answers 403.'),
  'tidings.notify.password': secret('Basic-auth password Dovecot uses for the notify endpoint.'),
  'tidings.admin.token': secret('Bearer token for the /api/admin routes and the CLI; empty = admin API answers 403.'),
  'tidings.session.lifetimeSeconds': int(3600, 10, 31_536_000, 'Session lifetime: login and every new connection slide it forward, an open socket does not; when it lapses, its sockets on every node are closed.', { reloadable: true }),
  'tidings.session.cookieSecure': bool(false, 'Mark the secret cookie Secure (set true behind HTTPS).', { reloadable: true }),
  'tidings.session.cookieSameSite': str('Lax', 'SameSite of the secret cookie: Strict, Lax or None (None needs HTTPS; use it when allowedOrigins are on other sites).', { reloadable: true }),
  'tidings.session.ipCheck': bool(false, 'Refuse sockets from another client IP than the login\'s.', { reloadable: true, cascade: true }),
  'tidings.login.maxFailuresPerIp': int(20, 1, 1_000_000, 'Failed logins allowed per client IP within the window, then 429.', { reloadable: true }),
  'tidings.login.maxFailuresPerLogin': int(5, 1, 1_000_000, 'Failed logins allowed per login name within the window, then 429.', { reloadable: true }),
  'tidings.login.failureWindowSeconds': int(300, 1, 86_400, 'Window over which failed logins are counted.', { reloadable: true }),
  'tidings.connections.maxPerUser': int(8, 1, 10_000, 'Open connections allowed per user across the cluster, then 429.', { reloadable: true, cascade: true }),
  'tidings.socketio.pingIntervalMs': int(25000, 1000, 600_000, 'Socket.IO heartbeat interval.'),
  'tidings.socketio.pingTimeoutMs': int(20000, 1000, 600_000, 'Socket.IO heartbeat timeout.'),
  'tidings.dedupe.windowSeconds': int(300, 1, 604_800, 'How long an idempotency key is remembered.', { reloadable: true }),
  'tidings.longpoll.holdSeconds': int(40, 1, 600, 'How long a long-poll is held open without events before 304.', { reloadable: true }),
  'tidings.history.size': int(100, 0, 100_000, 'Events kept per user, so that a client on any transport resumes from its last offset; 0 keeps none (offsets still count).', { reloadable: true }),
  'tidings.history.ttlSeconds': int(600, 1, 604_800, 'Age after which an event leaves the history; resuming from before it is "not recovered".', { reloadable: true }),
  'tidings.sse.heartbeatMs': int(25000, 1000, 600_000, 'ms between comment lines on an idle SSE stream, below a proxy\'s read timeout.', { reloadable: true }),
  'tidings.shutdown.graceMs': int(5000, 0, 9000, 'On SIGTERM, how long open requests get before sockets are closed.'),
  'tidings.cluster.heartbeatMs': int(2000, 100, 60_000, 'Node liveness heartbeat period.'),
  'tidings.cluster.livenessTtlMs': int(10000, 500, 300_000, 'A node whose heartbeat is older than this is dead.'),
  'tidings.remote.maxPending': int(10000, 1, 10_000_000, 'Remote batches kept while Redis is unreachable; overflow is dropped and counted.', { reloadable: true }),
  'tidings.config.watch': bool(true, 'Reload when a file in the config directory changes.'),
  'tidings.log.level': str('info', 'fatal, error, warn, info, debug or trace.', { reloadable: true }),
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
export function coerce(spec: KeySpec, raw: string): Coerced {
  const text = raw.trim();
  switch (spec.type) {
    case 'string':
    case 'secret':
      return { ok: true, value: raw };
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
    case 'list':
      return { ok: true, value: Object.freeze(text === '' ? [] : text.split(',').map((s) => s.trim()).filter((s) => s !== '')) };
  }
}
