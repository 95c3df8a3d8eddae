import { createServer, STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isBackendUnavailable } from '../backend-unavailable.js';
import { backendUnavailable, TidingsError } from '../errors.js';
import { drainRest } from './drain-rest.js';
import { missingHost, type RawHandler } from './dispatcher.js';
import { lazyChildLogger } from './lazy-request-logger.js';
import type { Logger } from '../log.js';

/**
 * The HTTP side: a fastify instance on a server whose `request` and `upgrade` events belong to
 * the dispatcher (`dispatcher.ts`); `handler` is fastify's, for the dispatcher to hand requests to.
 * Every error leaves as `{"error":{"code","message"}}`.
 */
export function buildHttp(opts: { log: Logger; maxBodyBytes: number; headersTimeoutMs: number }): { app: FastifyInstance; server: Server; handler: RawHandler } {
  let server!: Server;
  let handler!: RawHandler;
  const app = Fastify({
    loggerInstance: opts.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLogger,
    bodyLimit: opts.maxBodyBytes,
    // fastify's own 503 while closing has its own body shape; the onRequest hook below answers instead.
    return503OnClosing: false,
    forceCloseConnections: true,
    // Requests node's parser refuses before fastify sees them: 400, 431, 408 in the tidings shape.
    clientErrorHandler: answerClientError,
    // Requests fastify refuses before routing (a URL such as `/%`).
    frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => sendError(err, req, reply),
    serverFactory: (h) => {
      handler = h;
      server = createServer({
        // A request without Host is refused by tidings (400 in its shape), not by node with an empty body.
        requireHostHeader: false,
        headersTimeout: opts.headersTimeoutMs,
        // How often node looks for requests past headersTimeout (its default, 30 s, would let one wait 90 s).
        connectionsCheckingInterval: Math.min(30_000, Math.ceil(opts.headersTimeoutMs / 2)),
      });
      return server;
    },
  });

  // JSON only: a text body on a JSON route is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err: FastifyError | TidingsError, req, reply) => sendError(err, req, reply));
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // Callback style: no promise per request on the publish path.
  app.addHook('onRequest', (req, _reply, done) => {
    // A request that arrives on an open connection while the node closes.
    if (closing) return done(new TidingsError('TIDINGS_SHUTTING_DOWN'));
    done(missingHost(req.raw) ?? undefined);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new TidingsError('TIDINGS_NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`).toBody());
  });
  return { app: app as unknown as FastifyInstance, server, handler };
}

function sendError(err: FastifyError | TidingsError, req: FastifyRequest, reply: FastifyReply): void {
  const te = err instanceof TidingsError ? err : isBackendUnavailable(err) ? backendUnavailable() : translate(err as FastifyError);
  if (te.code === 'TIDINGS_BACKEND_UNAVAILABLE') req.log.warn({ err: err.message }, 'request failed: the cluster store is unreachable');
  else if (te.status >= 500) req.log.error({ err }, 'request failed');
  if (!req.raw.complete) {
    // fastify asks for `Connection: close` when it stops reading a body; closing with the body
    // still arriving resets the connection and the client loses this answer (drain-rest.ts).
    reply.removeHeader('connection');
    drainRest(req.raw);
  }
  void reply.code(te.status).headers(te.headers).type('application/json; charset=utf-8').send(te.toBody());
}

/** What node's HTTP parser refused, as a TidingsError. */
function clientErrorOf(err: Error & { code?: string }): TidingsError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new TidingsError('TIDINGS_HEADERS_TOO_LARGE');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new TidingsError('TIDINGS_REQUEST_TIMEOUT');
    case 'HPE_INVALID_METHOD':
      return new TidingsError('TIDINGS_METHOD_NOT_ALLOWED', 'Unknown HTTP method');
    default:
      return new TidingsError('TIDINGS_BAD_REQUEST', `The request is not valid HTTP/1.1${err.code ? ` (${err.code})` : ''}`);
  }
}

/**
 * fastify's `clientErrorHandler`: node's parser refused the request (or it timed out). Answers as
 * node itself would, only in the tidings shape: not on a socket already reset, and not in the middle
 * of another answer; then closes.
 */
function answerClientError(this: FastifyInstance, err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const te = clientErrorOf(err);
  this.log.debug({ code: err.code, answer: te.code }, 'refused a request node could not parse');
  // The same check as node's own default handler: an answer already under way must not be corrupted.
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) return void socket.destroy();
  const body = JSON.stringify(te.toBody());
  socket.end(`HTTP/1.1 ${te.status} ${STATUS_CODES[te.status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  // What the client still sends is read and dropped until it closes too, so the answer is not lost to a reset.
  socket.on('data', () => undefined);
  setTimeout(() => socket.destroy(), 5000).unref();
}

function translate(err: FastifyError): TidingsError {
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return new TidingsError('TIDINGS_BAD_URL', `The request URL is malformed: ${err.message}`);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new TidingsError('TIDINGS_BAD_URL', 'A path segment of the request URL is too long');
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
