import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON; undefined when it is not JSON. */
  json: any;
}

/**
 * Sends `head` (a request head without the final blank line) and `body` over a fresh TCP
 * connection to `url`, and reads the answer until the server closes or a complete response
 * (by Content-Length) has arrived. For requests no client library would send.
 */
export function rawRequest(url: string, head: string, body = '', timeoutMs = 5000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: hostname, port: Number(port) });
    let buf = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => finish(new Error(`no complete answer to ${head.split('\r\n')[0]} within ${timeoutMs} ms: ${buf.toString()}`)), timeoutMs);
    const finish = (err: Error | null, a?: RawAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(a!);
    };
    const parsed = (): RawAnswer | null => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const lines = buf.toString('latin1', 0, end).split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = buf.subarray(end + 4);
      const length = headers['content-length'] === undefined ? null : Number(headers['content-length']);
      if (length !== null && rest.length < length) return null;
      const text = rest.subarray(0, length ?? rest.length).toString('utf8');
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status, headers, body: text, json };
    };
    sock.on('connect', () => sock.write(`${head}\r\n\r\n${body}`));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const a = parsed();
      // A 101 has no body: done at once.
      if (a && (a.status === 101 || a.headers['content-length'] !== undefined)) finish(null, a);
    });
    sock.on('end', () => {
      const a = parsed();
      if (a) finish(null, a);
      else finish(new Error(`connection closed before a complete answer: ${buf.toString()}`));
    });
    sock.on('error', (e) => finish(e));
  });
}

/** The head of a WebSocket upgrade request; `over` replaces or (with null) removes headers. */
export function upgradeHead(url: string, path: string, over: Record<string, string | null> = {}, method = 'GET'): string {
  const { host } = new URL(url);
  const headers: Record<string, string | null> = {
    Host: host,
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...over,
  };
  return [`${method} ${path} HTTP/1.1`, ...Object.entries(headers).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}`)].join('\r\n');
}
