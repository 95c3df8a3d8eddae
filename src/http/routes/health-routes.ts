import type { FastifyInstance } from 'fastify';
import { TidingsError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';

export function registerHealthRoutes(app: FastifyInstance, d: { ready: () => { ready: boolean; reason?: string }; metrics: Metrics }): void {
  app.get('/health/live', async () => ({ status: 'live' }));
  app.get('/health/ready', async (_req, reply) => {
    const r = d.ready();
    if (r.ready) return { status: 'ready' };
    // A balancer only reads the status; a person reading the body gets the why, in the error shape.
    const e = new TidingsError('TIDINGS_NOT_READY', `This node cannot deliver cluster-wide right now: ${r.reason ?? 'unknown'}`, { reason: r.reason ?? null });
    void reply.code(e.status);
    return e.toBody();
  });
  app.get('/metrics', async (_req, reply) => {
    void reply.type(d.metrics.registry.contentType);
    return d.metrics.registry.metrics();
  });
}
