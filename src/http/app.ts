import { createServer, type Server } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { isBackendUnavailable } from '../backend-unavailable.js';
import { backendUnavailable, TidingsError } from '../errors.js';
import type { RawHandler } from './dispatcher.js';
import { headersOf } from './refuse.js';
import type { Logger } from '../log.js';

/**
 * The HTTP side: a fastify instance on a server whose `request` and `upgrade` events belong to
 * the dispatcher (`dispatcher.ts`); `handler` is fastify's, for the dispatcher to hand requests to.
 * Every error leaves as `{"error":{"code","message"}}`.
 */
export function buildHttp(opts: { log: Logger; maxBodyBytes: number }): { app: FastifyInstance; server: Server; handler: RawHandler } {
  let server!: Server;
  let handler!: RawHandler;
  const app = Fastify({
    loggerInstance: opts.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.maxBodyBytes,
    return503OnClosing: true,
    forceCloseConnections: true,
    serverFactory: (h) => {
      handler = h;
      server = createServer();
      return server;
    },
  });

  // JSON only: a text body on a JSON route is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err: FastifyError | TidingsError, req, reply) => {
    const te = err instanceof TidingsError ? err : isBackendUnavailable(err) ? backendUnavailable() : translate(err as FastifyError);
    if (te.code === 'TIDINGS_BACKEND_UNAVAILABLE') req.log.warn({ err: err.message }, 'request failed: the cluster store is unreachable');
    else if (te.status >= 500) req.log.error({ err }, 'request failed');
    void reply.code(te.status).headers(headersOf(te)).type('application/json; charset=utf-8').send(te.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new TidingsError('TIDINGS_NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`).toBody());
  });
  return { app: app as unknown as FastifyInstance, server, handler };
}

function translate(err: FastifyError): TidingsError {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new TidingsError('TIDINGS_BODY_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new TidingsError('TIDINGS_UNSUPPORTED_MEDIA_TYPE');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new TidingsError('TIDINGS_BAD_JSON', 'The body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new TidingsError('TIDINGS_BAD_JSON', `Request body is not valid JSON: ${err.message}`);
  }
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) return new TidingsError('TIDINGS_BAD_JSON', `Request body is not valid JSON: ${err.message}`);
  if (err.validation) return new TidingsError('TIDINGS_VALIDATION', err.message);
  if (err.statusCode === 413) return new TidingsError('TIDINGS_BODY_TOO_LARGE');
  if (err.statusCode === 415) return new TidingsError('TIDINGS_UNSUPPORTED_MEDIA_TYPE');
  if (err.statusCode === 405) return new TidingsError('TIDINGS_METHOD_NOT_ALLOWED');
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return new TidingsError('TIDINGS_BAD_REQUEST', err.message);
  return new TidingsError('TIDINGS_INTERNAL');
}
