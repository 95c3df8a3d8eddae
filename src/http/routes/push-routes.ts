import type { FastifyInstance } from 'fastify';
import { TidingsError } from '../../errors.js';
import type { ConfigService } from '../../config/config-service.js';
import type { Publisher } from '../../delivery/publisher.js';
import { bearerOf, secretMatches } from '../bearer.js';
import { id, objectBody, reqStr, str } from '../validate.js';

export function registerPushRoutes(app: FastifyInstance, d: { config: ConfigService; publisher: Publisher }): void {
  app.post('/api/push', async (req, reply) => {
    const token = d.config.settings['tidings.push.token'];
    if (!token) throw new TidingsError('TIDINGS_PUSH_DISABLED');
    if (!secretMatches(bearerOf(req.headers.authorization), token)) throw new TidingsError('TIDINGS_PUSH_UNAUTHORIZED');
    const b = objectBody(req.body);
    const contextId = id(b, 'context');
    const userId = id(b, 'user');
    const name = reqStr(b, 'event', 256);
    if (b.args !== undefined && !Array.isArray(b.args)) throw new TidingsError('TIDINGS_VALIDATION', "'args' must be an array");
    // `data` is the event's single argument; `args` gives several positional ones.
    const args = Array.isArray(b.args) ? b.args : b.data === undefined ? [] : [b.data];
    const pathFilter = b.pathFilter === undefined || b.pathFilter === null ? null : typeof b.pathFilter === 'string' ? b.pathFilter : badType('pathFilter');
    const sourceToken = str(b, 'sourceToken', { optional: true, max: 128 });
    const key = str(b, 'key', { optional: true, max: 256 });
    if (!d.config.directory.users.has(`${userId}@${contextId}`)) throw new TidingsError('TIDINGS_UNKNOWN_USER', `No user ${userId}@${contextId}`);
    const r = await d.publisher.publish({ user: { userId, contextId }, name, args, namespace: '/', pathFilter, sourceToken, key });
    void reply.code(202);
    return { id: r.id, duplicate: r.duplicate };
  });
}

function badType(field: string): never {
  throw new TidingsError('TIDINGS_VALIDATION', `'${field}' must be a string or null`);
}
