/**
 * System A of the messaging benchmark (docs/benchmarks.md): one node of a plain Socket.IO 4.8 cluster.
 * @socket.io/redis-adapter (classic pub/sub adapter) on one Redis, every socket joins room
 * `user:<id>` from its handshake `auth.user`, and `POST /publish {user, event, data}` does
 * `io.to('user:<id>').emit(event, data)`. No authentication, no sessions, no registry.
 * `POST /noop` parses the body and answers 200 without doing anything: the benchmark's
 * reference for what one HTTP publish request costs a Node server on its own.
 *
 * Run: PORT=… REDIS_URL=redis://127.0.0.1:… node dist/bench/baseline-socketio-node.js
 * (bench/messaging.ts starts two of these.) GET /health answers 200 once both Redis
 * connections of the adapter are ready.
 */
import { createServer } from 'node:http';
import { baselineHttp } from './baseline-publish.js';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? 0);
const redisUrl = process.env.REDIS_URL ?? '';
if (!redisUrl) throw new Error('REDIS_URL is required');

const pub = new Redis(redisUrl);
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on('error', (e: Error) => console.error(`redis: ${e.message}`));

const http = createServer(
  baselineHttp(
    (p) => void io.to(`user:${p.user}`).emit(p.event, p.data),
    () => pub.status === 'ready' && sub.status === 'ready',
    // engine.io's own request listener answers these
    (url) => url.startsWith('/socket.io/'),
  ),
);
// Like fastify's default (72 s): the publisher's keep-alive sockets must survive pauses between phases.
http.keepAliveTimeout = 72_000;

const io = new Server(http, { serveClient: false, adapter: createAdapter(pub, sub) });
io.on('connection', (socket) => {
  const user = (socket.handshake.auth as { user?: unknown })?.user ?? socket.handshake.query.user;
  if (typeof user !== 'string' && typeof user !== 'number') {
    socket.disconnect(true);
    return;
  }
  void socket.join(`user:${user}`);
});

http.listen(port, '127.0.0.1');

const stop = (): void => {
  io.close(() => {
    pub.disconnect();
    sub.disconnect();
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 3000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
