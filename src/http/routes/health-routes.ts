import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics.js';

export function registerHealthRoutes(app: FastifyInstance, d: { ready: () => { ready: boolean; reason?: string }; metrics: Metrics }): void {
  app.get('/health/live', async () => ({ status: 'live' }));
  app.get('/health/ready', async (_req, reply) => {
    const r = d.ready();
    void reply.code(r.ready ? 200 : 503);
    return r.ready ? { status: 'ready' } : { status: 'not-ready', reason: r.reason };
  });
  app.get('/metrics', async (_req, reply) => {
    void reply.type(d.metrics.registry.contentType);
    return d.metrics.registry.metrics();
  });
}
