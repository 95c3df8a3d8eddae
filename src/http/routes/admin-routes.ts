import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TidingsError } from '../../errors.js';
import type { ConfigService, Lookup, ReloadOutcome, ServerLookup } from '../../config/config-service.js';
import type { NodeInfo } from '../../ports/connection-registry.js';
import { isLocalAdminRequest } from '../admin-socket.js';
import { bearerOf, secretMatches } from '../bearer.js';
import { objectBody, plainText, queryId, queryOne, reqStr, type Query } from '../validate.js';

export interface AdminDeps {
  config: ConfigService;
  /** Reload here and tell every other node to reload. */
  reloadCluster(): Promise<ReloadOutcome>;
  /** Tell every other node that run-time values changed. */
  announceConfigChange(reason: string): Promise<void>;
  status(): Promise<{ nodeId: string; members: NodeInfo[] }>;
  /** True on the in-memory backends: run-time values are lost when the node restarts. */
  volatileStore: boolean;
}

const VOLATILE = 'this node runs on the in-memory backends: the value lives only until it restarts (put lasting values in directory.yml, or run on Redis)';

/**
 * The operator's API, behind `tidings.admin.token` over HTTP and open on the local admin socket
 * (`tidings.admin.socket`, see admin-socket.ts); the CLI is a client of it.
 *
 *   GET    /api/admin/config?key=K&context=C[&user=U]   value in force, its scope and source
 *   GET    /api/admin/config?key=K                       the same for a server-wide key
 *   PUT    /api/admin/config  {key, value, context, user?}  run-time value (config store); only
 *                                                         keys the schema marks `cascade`
 *   DELETE /api/admin/config?key=K&context=C[&user=U]   removes a run-time value (also one stored
 *                                                         under a key PUT no longer accepts)
 *   POST   /api/admin/reload                              reload files on every node (422 when invalid)
 *   GET    /api/admin/status
 *
 * Config answers carry `{key, context, user, value, scope, source, type}`; `source` is `file:line`,
 * `env:NAME`, `store` or `built-in default`.
 */
export function registerAdminRoutes(app: FastifyInstance, d: AdminDeps): void {
  const auth = (req: FastifyRequest) => {
    // The local admin socket's file permissions already decided who may ask.
    if (isLocalAdminRequest(req.raw)) return;
    const token = d.config.settings['tidings.admin.token'];
    if (!token) throw new TidingsError('TIDINGS_ADMIN_DISABLED');
    if (!secretMatches(bearerOf(req.headers.authorization), token)) throw new TidingsError('TIDINGS_ADMIN_UNAUTHORIZED');
  };
  const announce = async (reason: string): Promise<boolean> => {
    try {
      await d.announceConfigChange(reason);
      return true;
    } catch (e) {
      // The value is stored; other nodes pick it up at their next change or reload.
      app.log.warn({ err: String(e) }, 'could not tell the cluster about a run-time config change');
      return false;
    }
  };

  app.get('/api/admin/config', async (req) => {
    auth(req);
    const q = req.query as Query;
    const key = queryOne(q, 'key');
    if (!key) throw new TidingsError('TIDINGS_VALIDATION', "query parameter 'key' is required");
    if (q.context === undefined && q.user === undefined) return answer(d.config.lookupServer(key));
    const contextId = queryId(q, 'context') as number;
    const userId = queryId(q, 'user', true);
    return answer(d.config.lookup(key, contextId, userId));
  });

  app.put('/api/admin/config', async (req) => {
    auth(req);
    const b = objectBody(req.body);
    const key = plainText('key', reqStr(b, 'key', 256));
    const value = plainText('value', valueText(b.value));
    const { contextId, userId } = scopeOf(b);
    const now = await d.config.set(key, value, contextId, userId);
    const announced = await announce(`set ${key}`);
    if (d.volatileStore) req.log.warn({ key }, `run-time value of ${key} set: ${VOLATILE}`);
    return { ok: true, announced, ...answer(now), ...shadowNote(now, userId), ...(d.volatileStore ? { warning: VOLATILE } : {}) };
  });

  app.delete('/api/admin/config', async (req) => {
    auth(req);
    const q = req.query as Query;
    const key = queryOne(q, 'key');
    if (!key) throw new TidingsError('TIDINGS_VALIDATION', "query parameter 'key' is required");
    const contextId = queryId(q, 'context') as number;
    const userId = queryId(q, 'user', true);
    const { removed, now } = await d.config.unset(key, contextId, userId);
    const announced = removed ? await announce(`unset ${JSON.stringify(key)}`) : true;
    // A key outside the cascade has no value in force to show: only its stored leftover went.
    return { ok: true, removed, announced, ...(now ? answer(now) : { key, context: contextId, user: userId }) };
  });

  app.post('/api/admin/reload', async (req, reply) => {
    auth(req);
    const r = await d.reloadCluster();
    if (r.ok) return r;
    void reply.code(422);
    return new TidingsError('TIDINGS_CONFIG_INVALID', `configuration not reloaded, the old one stays in force: ${r.error}`,
      r.file !== undefined ? { file: r.file, line: r.line ?? null, key: r.key ?? null } : undefined).toBody();
  });

  app.get('/api/admin/status', async (req) => {
    auth(req);
    return d.status();
  });
}

function answer(l: Lookup | ServerLookup) {
  return { key: l.key, context: l.context, user: l.user, value: l.value, scope: l.scope, source: l.source, type: l.type };
}

/** A value just set that is not the one in force: a `final` pins the key at a wider scope. */
function shadowNote(now: Lookup, userId: number | null): { note?: string } {
  const setScope = userId === null ? 'context' : 'user';
  if (now.scope === setScope && now.source === 'store') return {};
  return { note: `stored, but the value in force comes from ${now.scope === 'default' ? 'the built-in default' : `${now.scope} scope (${now.source})`}: the key is pinned there (meta final)` };
}

function valueText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.join(',');
  throw new TidingsError('TIDINGS_VALIDATION', "'value' must be a string, number, boolean or list of strings");
}

function scopeOf(b: Record<string, unknown>): { contextId: number; userId: number | null } {
  const num = (v: unknown, f: string) => {
    const n = typeof v === 'string' && /^\d{1,10}$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new TidingsError('TIDINGS_VALIDATION', `'${f}' must be a non-negative integer`);
    return n;
  };
  return { contextId: num(b.context, 'context'), userId: b.user === undefined || b.user === null || b.user === '' ? null : num(b.user, 'user') };
}
