import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TidingsError } from '../../errors.js';
import type { ConfigService, ReloadOutcome } from '../../config/config-service.js';
import type { NodeInfo } from '../../ports/connection-registry.js';
import { bearerOf, secretMatches } from '../bearer.js';
import { objectBody, queryId, reqStr } from '../validate.js';

export interface AdminDeps {
  config: ConfigService;
  /** Reload here and tell every other node to reload. */
  reloadCluster(): Promise<ReloadOutcome>;
  /** Tell every other node that run-time values changed. */
  announceConfigChange(reason: string): Promise<void>;
  status(): Promise<{ nodeId: string; members: NodeInfo[] }>;
}

/** The operator's API, behind `tidings.admin.token`; the CLI is a client of it. */
export function registerAdminRoutes(app: FastifyInstance, d: AdminDeps): void {
  const auth = (req: FastifyRequest) => {
    const token = d.config.settings['tidings.admin.token'];
    if (!token) throw new TidingsError('TIDINGS_ADMIN_DISABLED');
    if (!secretMatches(bearerOf(req.headers.authorization), token)) throw new TidingsError('TIDINGS_ADMIN_UNAUTHORIZED');
  };

  app.get('/api/admin/config', async (req) => {
    auth(req);
    const q = req.query as Record<string, string | undefined>;
    const key = q.key;
    if (!key) throw new TidingsError('TIDINGS_VALIDATION', "query parameter 'key' is required");
    const contextId = queryId(q, 'context') as number;
    const userId = queryId(q, 'user', true);
    if (!d.config.directory.contexts.has(contextId)) throw new TidingsError('TIDINGS_UNKNOWN_CONTEXT', `No context ${contextId}`);
    if (userId !== null && !d.config.directory.users.has(`${userId}@${contextId}`)) throw new TidingsError('TIDINGS_UNKNOWN_USER', `No user ${userId}@${contextId}`);
    const r = userId === null ? d.config.resolveForContext(key, contextId) : d.config.resolve(key, { userId, contextId });
    return { key, context: contextId, user: userId, value: r.value, scope: r.scope, source: r.source };
  });

  app.put('/api/admin/config', async (req) => {
    auth(req);
    const b = objectBody(req.body);
    const key = reqStr(b, 'key', 256);
    if (typeof b.value !== 'string' && typeof b.value !== 'number' && typeof b.value !== 'boolean') throw new TidingsError('TIDINGS_VALIDATION', "'value' must be a string, number or boolean");
    const { contextId, userId } = scopeOf(b);
    await d.config.set(key, String(b.value), contextId, userId);
    await d.announceConfigChange(`set ${key}`);
    return { ok: true };
  });

  app.delete('/api/admin/config', async (req) => {
    auth(req);
    const q = req.query as Record<string, string | undefined>;
    if (!q.key) throw new TidingsError('TIDINGS_VALIDATION', "query parameter 'key' is required");
    const removed = await d.config.unset(q.key, queryId(q, 'context') as number, queryId(q, 'user', true));
    await d.announceConfigChange(`unset ${q.key}`);
    return { ok: true, removed };
  });

  app.post('/api/admin/reload', async (req, reply) => {
    auth(req);
    const r = await d.reloadCluster();
    if (!r.ok) void reply.code(422);
    return r.ok ? r : new TidingsError('TIDINGS_CONFIG_INVALID', r.error).toBody();
  });

  app.get('/api/admin/status', async (req) => {
    auth(req);
    return d.status();
  });
}

function scopeOf(b: Record<string, unknown>): { contextId: number; userId: number | null } {
  const num = (v: unknown, f: string) => {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new TidingsError('TIDINGS_VALIDATION', `'${f}' must be a non-negative integer`);
    return n;
  };
  return { contextId: num(b.context, 'context'), userId: b.user === undefined || b.user === null ? null : num(b.user, 'user') };
}
