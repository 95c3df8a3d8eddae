import type { FastifyInstance } from 'fastify';
import { TidingsError } from '../../errors.js';
import type { ConfigService } from '../../config/config-service.js';
import type { Publication } from '../../domain/types.js';
import type { Publisher } from '../../delivery/publisher.js';
import { validatePathFilter } from '../../delivery/path-filter.js';
import { isLocalAdminRequest } from '../admin-socket.js';
import { bearerOf, secretMatches } from '../bearer.js';
import { deeperThan, id, objectBody, reqStr, str } from '../validate.js';
import { userKey } from '../../domain/types.js';
import { NOT_RECOVERED } from '../../history/resume-wire.js';

/** Most events one batch request may carry. */
export const MAX_BATCH = 1000;

/**
 * Names Socket.IO keeps for itself: a client can never listen for them as events, and emitting one
 * throws inside socket.io (README, "An event's fields").
 */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

/**
 * Names tidings itself sends: a published `tidings:not-recovered` would tell a resuming client that
 * it missed events (the webmail reloads for nothing, README "Resume"), a `session:invalid` would sign
 * it out, a `server:restart` would make it reconnect.
 */
export const TIDINGS_EVENTS: ReadonlySet<string> = new Set([NOT_RECOVERED, 'session:invalid', 'server:restart']);

/**
 * POST /api/push: one event as a JSON object → 202 `{id, duplicate}`; or a JSON array of such
 * objects → 202 `{results: [{id, duplicate}, …]}` in the same order. A batch is checked whole
 * before anything is published: one bad event refuses the request (400, naming its index) and
 * publishes none. A batch exists because one HTTP request costs a Node server about as much CPU
 * as delivering the event (bench/results/messaging.md); its events keep their order per user.
 */
export function registerPushRoutes(app: FastifyInstance, d: { config: ConfigService; publisher: Publisher }): void {
  app.post('/api/push', async (req, reply) => {
    // Over the local admin socket no token: who may reload the cluster there may also publish.
    if (!isLocalAdminRequest(req.raw)) {
      const token = d.config.settings['tidings.push.token'];
      if (!token) throw new TidingsError('TIDINGS_PUSH_DISABLED');
      if (!secretMatches(bearerOf(req.headers.authorization), token)) throw new TidingsError('TIDINGS_PUSH_UNAUTHORIZED');
    }
    if (Array.isArray(req.body)) {
      const items = req.body as unknown[];
      if (items.length === 0) throw new TidingsError('TIDINGS_VALIDATION', 'A batch must hold at least one event');
      if (items.length > MAX_BATCH) throw new TidingsError('TIDINGS_VALIDATION', `A batch may hold at most ${MAX_BATCH} events, got ${items.length}`);
      const pubs = items.map((item, i) => {
        try {
          return publication(item, d.config);
        } catch (e) {
          if (e instanceof TidingsError) throw new TidingsError(e.code, `event [${i}]: ${e.message}`, { index: i });
          throw e;
        }
      });
      // Started in order, so lookups go out in order and each user's events keep their order; but an
      // event with a `key` reaches local sockets only after its idempotency check, so that user's
      // later events wait for it.
      const results: { id: string; duplicate: boolean }[] = new Array(pubs.length);
      const byUser = new Map<string, number[]>();
      pubs.forEach((p, i) => {
        const k = userKey(p.user);
        const list = byUser.get(k);
        if (list) list.push(i);
        else byUser.set(k, [i]);
      });
      await Promise.all([...byUser.values()].map(async (indexes) => {
        const started: Promise<void>[] = [];
        for (const i of indexes) {
          const one = d.publisher.publish(pubs[i]).then((r) => void (results[i] = { id: r.id, duplicate: r.duplicate }));
          // Marked handled: if an earlier keyed event fails, the request fails without waiting for this one.
          one.catch(() => undefined);
          started.push(one);
          if (pubs[i].key !== null) await one;
        }
        await Promise.all(started);
      }));
      void reply.code(202);
      return { results };
    }
    const r = await d.publisher.publish(publication(req.body, d.config));
    void reply.code(202);
    return { id: r.id, duplicate: r.duplicate };
  });
}

/** One event of the body, checked whole. */
function publication(body: unknown, config: ConfigService): Publication {
  const b = objectBody(body);
  const contextId = id(b, 'context');
  const userId = id(b, 'user');
  const name = reqStr(b, 'event', 256);
  if (RESERVED_EVENTS.has(name)) throw new TidingsError('TIDINGS_RESERVED_EVENT', `'${name}' is reserved by Socket.IO and cannot be published; choose another event name`, { event: name });
  if (TIDINGS_EVENTS.has(name)) throw new TidingsError('TIDINGS_RESERVED_EVENT', `'${name}' is reserved by tidings (it sends it itself: not recovered, session ended, node restarting) and cannot be published; choose another event name`, { event: name });
  if (b.args !== undefined && !Array.isArray(b.args)) throw new TidingsError('TIDINGS_VALIDATION', "'args' must be an array");
  // `data` is the event's single argument; `args` gives several positional ones.
  const args = Array.isArray(b.args) ? b.args : b.data === undefined ? [] : [b.data];
  // Checked here, once, so that serializing the event later can never run out of stack.
  const maxDepth = config.settings['tidings.push.maxDepth'];
  for (const a of args) {
    if (deeperThan(a, maxDepth)) throw new TidingsError('TIDINGS_TOO_DEEP', `'${Array.isArray(b.args) ? 'args' : 'data'}' nests objects and arrays more than ${maxDepth} levels deep (tidings.push.maxDepth)`, { maxDepth });
  }
  const pathFilter = validatePathFilter(b.pathFilter === undefined || b.pathFilter === null ? null : typeof b.pathFilter === 'string' ? b.pathFilter : badType('pathFilter'));
  const sourceToken = str(b, 'sourceToken', { optional: true, max: 128 });
  const key = str(b, 'key', { optional: true, max: 256 });
  const user = { userId, contextId };
  if (!config.directory.users.has(userKey(user))) throw new TidingsError('TIDINGS_UNKNOWN_USER', `No user ${userKey(user)}`);
  return { user, name, args, namespace: '/', pathFilter, sourceToken, key };
}

function badType(field: string): never {
  throw new TidingsError('TIDINGS_VALIDATION', `'${field}' must be a string or null`);
}
