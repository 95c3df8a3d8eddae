import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { DIAG_MAX_GAP_MS, DIAG_MAX_IDLE_SECONDS, DIAG_MAX_RUNNING, diagEcho } from '../../diag/echo.js';
import { TidingsError } from '../../errors.js';

export interface DiagDeps {
  nodeId: string;
  enabled(): boolean;
  clientIp(req: IncomingMessage): string;
  /** Whether the request's TCP peer is a proxy whose X-Forwarded-For tidings believes. */
  trustsPeer(req: IncomingMessage): boolean;
}

/**
 * The server half of `tidings diag URL`, a self-test from outside through whatever proxy stands in
 * front (the WebSocket half is sockets/diag-ws-endpoint.ts):
 *
 *   GET /api/diag/echo                      what arrived: client IP, peer, Host, forwarding headers
 *   GET /api/diag/stream?format=sse|chunked&gapMs=N
 *                                           a first chunk at once, a second N ms later: a client that
 *                                           gets both together sits behind a buffering proxy
 *   GET /api/diag/idle?seconds=N            answers only after N idle seconds, like a held long-poll:
 *                                           a proxy with a shorter read timeout cuts it
 *
 * Open without credentials, so bounded: at most DIAG_MAX_RUNNING held at once, each for a short time.
 */
export function registerDiagRoutes(app: FastifyInstance, d: DiagDeps): void {
  let running = 0;
  const check = () => {
    if (!d.enabled()) throw new TidingsError('TIDINGS_DIAG_DISABLED');
  };
  const hold = async <T>(work: () => Promise<T>): Promise<T> => {
    if (running >= DIAG_MAX_RUNNING) throw new TidingsError('TIDINGS_DIAG_BUSY');
    running++;
    try {
      return await work();
    } finally {
      running--;
    }
  };
  const bounded = (req: FastifyRequest, name: string, max: number, dflt: number): number => {
    const raw = (req.query as Record<string, string | undefined>)[name];
    if (raw === undefined) return dflt;
    if (!/^\d{1,6}$/.test(raw) || Number(raw) > max) throw new TidingsError('TIDINGS_VALIDATION', `'${name}' must be an integer from 0 to ${max}`);
    return Number(raw);
  };
  const echo = (req: FastifyRequest) => diagEcho(req.raw, d.nodeId, d.clientIp(req.raw), d.trustsPeer(req.raw));

  app.get('/api/diag/echo', async (req, reply) => {
    check();
    void reply.header('cache-control', 'no-store');
    return echo(req);
  });

  app.get('/api/diag/stream', async (req, reply) => {
    check();
    const q = req.query as Record<string, string | undefined>;
    const format = q.format ?? 'sse';
    if (format !== 'sse' && format !== 'chunked') throw new TidingsError('TIDINGS_VALIDATION', "'format' must be sse or chunked");
    const gapMs = bounded(req, 'gapMs', DIAG_MAX_GAP_MS, 1500);
    await hold(async () => {
      const res = reply.hijack().raw;
      // Deliberately no X-Accel-Buffering: the test is whether the proxy's own settings stream.
      res.writeHead(200, { 'content-type': format === 'sse' ? 'text/event-stream' : 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      const chunk = (n: number) => (format === 'sse' ? `event: diag\ndata: ${JSON.stringify({ chunk: n, at: Date.now() })}\n\n` : `${JSON.stringify({ chunk: n, at: Date.now() })}\n`);
      res.write(chunk(1));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, gapMs);
        res.once('close', () => {
          clearTimeout(t);
          resolve();
        });
      });
      if (!res.destroyed) res.end(chunk(2));
    });
  });

  app.get('/api/diag/idle', async (req) => {
    check();
    const seconds = bounded(req, 'seconds', DIAG_MAX_IDLE_SECONDS, 45);
    return hold(async () => {
      const t0 = Date.now();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, seconds * 1000);
        req.raw.socket.once('close', () => {
          clearTimeout(t);
          resolve();
        });
      });
      return { idleSeconds: (Date.now() - t0) / 1000, ...echo(req) };
    });
  });
}
