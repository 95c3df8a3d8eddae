/**
 * The HTTP side both Node baselines share (A: bench/baseline-socketio-node.ts, R:
 * bench/baseline-raw-ws.ts): `POST /publish {user, event, data}` parsed and checked, `POST /noop`
 * (parse the body, answer: what one HTTP request costs) and a 404 for the rest. `health` answers
 * `GET /health`. Both baselines then pay the same per request, so they differ only in delivery.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

export interface PublishRequest {
  readonly user: number | string;
  readonly event: string;
  readonly data: unknown;
}

function readBody(req: IncomingMessage, done: (text: string) => void): void {
  let text = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => (text += c));
  req.on('end', () => done(text));
}

const json = (res: ServerResponse, status: number, body: string): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(body);

/** `elsewhere(url)`: a request another listener on the same server answers (Socket.IO's own). */
export function baselineHttp(publish: (p: PublishRequest) => void, health: () => boolean, elsewhere: (url: string) => boolean = () => false): RequestListener {
  return (req, res) => {
    if (req.method === 'POST' && req.url === '/publish') {
      return readBody(req, (text) => {
        let b: { user?: unknown; event?: unknown; data?: unknown };
        try {
          b = JSON.parse(text) as typeof b;
        } catch {
          return json(res, 400, '{"error":"bad json"}');
        }
        if ((typeof b.user !== 'number' && typeof b.user !== 'string') || typeof b.event !== 'string') return json(res, 400, '{"error":"user and event are required"}');
        publish({ user: b.user, event: b.event, data: b.data });
        json(res, 200, '{"ok":true}');
      });
    }
    if (req.method === 'POST' && req.url === '/noop') {
      return readBody(req, (text) => {
        JSON.parse(text);
        json(res, 200, '{"ok":true}');
      });
    }
    if (req.method === 'GET' && req.url === '/health') return health() ? json(res, 200, '{"ok":true}') : json(res, 503, '{"ok":false}');
    if (elsewhere(req.url ?? '/')) return;
    res.writeHead(404).end();
  };
}
