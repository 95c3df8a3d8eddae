import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** How the CLI reaches a node: its local admin socket (no token), or HTTP with a bearer token. */
export type Route = { readonly kind: 'socket'; readonly path: string } | { readonly kind: 'http'; readonly url: string; readonly token: string };

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly json: unknown;
  readonly text: string;
}

/** A request that never reached a node (no socket file, nobody listening, DNS, …). */
export class Unreachable extends Error {
  constructor(readonly where: string, readonly code: string | undefined, message: string) {
    super(message);
  }
}

/** One JSON request over the route; rejects with Unreachable when no node answered at all. */
export function callNode(route: Route, method: string, path: string, body?: unknown): Promise<Answer> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload) headers['content-type'] = 'application/json';
  let opts: RequestOptions;
  let send = httpRequest;
  let where: string;
  if (route.kind === 'socket') {
    opts = { socketPath: route.path, path, method, headers };
    where = `the admin socket ${route.path}`;
  } else {
    const u = new URL(path, `${route.url}/`);
    if (route.token) headers.authorization = `Bearer ${route.token}`;
    opts = { protocol: u.protocol, hostname: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method, headers };
    if (u.protocol === 'https:') send = httpsRequest;
    where = u.origin;
  }
  return new Promise((resolve, reject) => {
    const req = send(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('no answer within 30 s'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new Unreachable(where, e.code, `cannot reach ${where}: ${e.code ?? e.message}`)));
    req.end(payload);
  });
}
