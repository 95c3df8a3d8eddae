import type { FastifyInstance } from 'fastify';
import type { ConfigService } from '../../config/config-service.js';
import { CLOSE } from '../../delivery/local-connection.js';
import { offsetFrom, type Offset } from '../../history/offset.js';
import { notRecoveredJson } from '../../history/resume-wire.js';
import { queryOf } from '../../sockets/socket-path.js';
import { openHeld, type HeldDeps } from './held-connection.js';

const ROUTE = '/api/push/poll';
const SESSION_INVALID = '{"name":"session:invalid","args":[],"namespace":"/"}';

/**
 * GET /api/push/poll?session=S[&since=O][&path=P][&connection=ID] (README, "Long-poll"): the events
 * after the offset (`since`, else `If-None-Match`) at once, or held up to
 * `tidings.longpoll.holdSeconds` for the first that arrive, else 304. Without an offset it holds
 * for events from now, and its 304 carries the head as the ETag to poll on from.
 */
export function registerPollRoutes(app: FastifyInstance, d: HeldDeps & { config: ConfigService }): void {
  app.get(ROUTE, async (req, reply) => {
    const since = pollOffset(queryOf(req.raw.url), req.headers['if-none-match']);
    const held = await openHeld(d, req, 'longpoll', ROUTE, since);
    const holdMs = d.config.settings['tidings.longpoll.holdSeconds'] * 1000;
    const res = reply.raw;
    void reply.hijack();
    const events: string[] = [];
    let etag: string | null = null;
    let answered = false;
    let soon: NodeJS.Immediate | undefined;
    const answer = async (releaseFirst = true): Promise<void> => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (soon) clearImmediate(soon);
      const position = held.feed.position();
      // The slot is free before the client can poll again with the same connection id; a node
      // shutting down answers first, before its server closes the connection.
      if (releaseFirst) await held.release();
      else void held.release();
      if (res.destroyed) return;
      const tag = etag ?? position;
      const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
      if (tag !== null) headers.ETag = `"${tag}"`;
      if (events.length === 0) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      const body = `{"events":[${events.join(',')}]}`;
      res.writeHead(200, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)) });
      res.end(body);
    };
    // Answer on the next turn, so that events arriving together (a remote batch, a replay) go in one answer.
    const answerSoon = () => void (soon ??= setImmediate(() => void answer()));
    const timer = setTimeout(() => void answer(), holdMs);
    res.once('close', () => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (soon) clearImmediate(soon);
      void held.release();
    });
    held.onClose((why) => {
      if (why === CLOSE.sessionEnded) events.push(SESSION_INVALID);
      void answer(why.code !== CLOSE.goingAway.code);
    });
    held.feed.attach({
      event: (event, json) => {
        events.push(json);
        etag = event.id;
        answerSoon();
      },
      notRecovered: (reason, offset) => {
        events.push(notRecoveredJson(reason, offset));
        if (offset !== null) etag = offset;
        answerSoon();
      },
    });
  });
}

/** `?since=` wins over `If-None-Match` (a client may not control the header). */
function pollOffset(query: URLSearchParams, ifNoneMatch: string | undefined): Offset | null {
  const since = query.get('since');
  if (since !== null && since !== '') return offsetFrom(since, "Parameter 'since'");
  if (ifNoneMatch === undefined || ifNoneMatch.trim() === '') return null;
  return offsetFrom(ifNoneMatch, 'If-None-Match');
}
