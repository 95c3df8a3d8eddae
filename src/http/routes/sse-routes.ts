import type { FastifyInstance } from 'fastify';
import type { ConfigService } from '../../config/config-service.js';
import { CLOSE } from '../../delivery/local-connection.js';
import { offsetFrom, type Offset } from '../../history/offset.js';
import { notRecoveredJson } from '../../history/resume-wire.js';
import { queryOf } from '../../sockets/socket-path.js';
import { openHeld, type HeldDeps } from './held-connection.js';

const ROUTE = '/api/push/events';
/** The reconnection delay EventSource is asked for, in ms. */
export const SSE_RETRY_MS = 2000;
/** A client that reads slower than this much unsent data is cut off; it resumes from Last-Event-ID. */
const MAX_UNSENT_BYTES = 1 << 20;
const SESSION_INVALID = '{"name":"session:invalid","args":[],"namespace":"/"}';

/**
 * GET /api/push/events?session=S[&since=O][&path=P][&connection=ID] (README, "Server-Sent
 * Events"): one message per event, `id:` = its offset, `data:` = its wire JSON; resumes from
 * `Last-Event-ID` (or `since`); a comment line every `tidings.sse.heartbeatMs` while idle.
 */
export function registerSseRoutes(app: FastifyInstance, d: HeldDeps & { config: ConfigService }): void {
  app.get(ROUTE, async (req, reply) => {
    const lastEventId = req.headers['last-event-id'];
    const since = sseOffset(queryOf(req.raw.url), Array.isArray(lastEventId) ? lastEventId.join(',') : lastEventId);
    const held = await openHeld(d, req, 'sse', ROUTE, since);
    const heartbeatMs = d.config.settings['tidings.sse.heartbeatMs'];
    const res = reply.raw;
    void reply.hijack();
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      // nginx buffers proxied responses unless told not to; an event must leave at once.
      'X-Accel-Buffering': 'no',
    });
    res.write(`retry: ${SSE_RETRY_MS}\n\n`);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      void held.release();
      res.end();
    };
    const write = (text: string): void => {
      if (ended) return;
      res.write(text);
      if (res.writableLength > MAX_UNSENT_BYTES) {
        d.log.info({ user: held.admission.user.key }, 'an SSE client reads too slowly: stream ended, it resumes from its Last-Event-ID');
        end();
      }
    };
    const heartbeat = setInterval(() => write(': keep-alive\n\n'), heartbeatMs);
    heartbeat.unref();
    res.once('close', end);
    held.onClose((why) => {
      if (why === CLOSE.sessionEnded) write(`data: ${SESSION_INVALID}\n\n`);
      // A node shutting down spreads its clients' reconnects (tidings.shutdown.reconnectSpreadMs):
      // EventSource waits `retry` ms before it reconnects, from its Last-Event-ID.
      if ('reconnectAfterMs' in why) write(`retry: ${why.reconnectAfterMs}\n\n`);
      end();
    });
    held.feed.attach({
      event: (event, json) => write(`id: ${event.id}\ndata: ${json}\n\n`),
      notRecovered: (reason, offset) => write(`${offset === null ? '' : `id: ${offset}\n`}data: ${notRecoveredJson(reason, offset)}\n\n`),
    });
  });
}

/** `?since=` wins over `Last-Event-ID`, as with the long-poll's `If-None-Match`. */
function sseOffset(query: URLSearchParams, lastEventId: string | undefined): Offset | null {
  const since = query.get('since');
  if (since !== null && since !== '') return offsetFrom(since, "Parameter 'since'");
  if (lastEventId === undefined || lastEventId.trim() === '') return null;
  return offsetFrom(lastEventId, 'Last-Event-ID');
}
