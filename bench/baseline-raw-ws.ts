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
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.env.PORT ?? 0);
const byUser = new Map<string, Set<WebSocket>>();

const readBody = (req: import('node:http').IncomingMessage, done: (text: string) => void): void => {
  let text = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => (text += c));
  req.on('end', () => done(text));
};

const http = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/publish') {
    readBody(req, (text) => {
      let b: { user?: unknown; event?: unknown; data?: unknown };
      try {
        b = JSON.parse(text) as typeof b;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad json"}');
        return;
      }
      if ((typeof b.user !== 'number' && typeof b.user !== 'string') || typeof b.event !== 'string') {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"user and event are required"}');
        return;
      }
      const set = byUser.get(String(b.user));
      if (set) {
        const frame = JSON.stringify({ name: b.event, args: [b.data] });
        for (const ws of set) ws.send(frame);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    return;
  }
  if (req.method === 'POST' && req.url === '/noop') {
    readBody(req, (text) => {
      JSON.parse(text);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    return;
  }
  if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    return;
  }
  res.writeHead(404).end();
});
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
