/**
 * System R, the floor: one Node process with a bare `ws` server and a bare HTTP publish endpoint.
 * A WebSocket at `/ws?user=<id>` is registered under that user (no auth, no session, no cluster);
 * `POST /publish {user, event, data}` sends one text frame `{"name":event,"args":[data]}` (the same
 * shape as tidings' plain WebSocket frames) to each of the user's sockets. Nothing crosses a node
 * and nothing touches Redis: whatever any push server does per event, it cannot do less than this
 * in Node.
 *
 * Run: PORT=… node dist/bench/baseline-raw-ws.js   (bench/messaging.ts starts it.)
 * GET /health answers 200.
 */
import { createServer } from 'node:http';
import { baselineHttp } from './baseline-publish.js';
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.env.PORT ?? 0);
const byUser = new Map<string, Set<WebSocket>>();

const http = createServer(
  baselineHttp(
    (p) => {
      const set = byUser.get(String(p.user));
      if (!set) return;
      const frame = JSON.stringify({ name: p.event, args: [p.data] });
      for (const ws of set) ws.send(frame);
    },
    () => true,
  ),
);
http.keepAliveTimeout = 72_000;

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
http.on('upgrade', (req, socket, head) => {
  const u = new URL(req.url ?? '/', 'http://x');
  const user = u.searchParams.get('user');
  if (u.pathname !== '/ws' || !user) {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    let set = byUser.get(user);
    if (!set) byUser.set(user, (set = new Set()));
    set.add(ws);
    ws.on('close', () => {
      set.delete(ws);
      if (set.size === 0) byUser.delete(user);
    });
    ws.on('error', () => ws.terminate());
  });
});

http.listen(port, '127.0.0.1');

const stop = (): void => {
  for (const set of byUser.values()) for (const ws of set) ws.terminate();
  http.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
