import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import WebSocket from 'ws';

/**
 * `tidings diag URL`: a self-test from outside, through whatever proxy stands in front of the nodes,
 * against the routes of http/routes/diag-routes.ts and sockets/diag-ws-endpoint.ts. Each check
 * that fails says what to change in nginx, Apache httpd and HAProxy.
 */
export interface DiagOptions {
  /** How long the idle check holds a request; above the proxy's read timeout to prove it. */
  readonly idleSeconds: number;
  /** Gap between the two chunks of the streaming checks. */
  readonly gapMs: number;
  readonly print: (line: string) => void;
}

interface Fix {
  readonly nginx: string;
  readonly apache: string;
  readonly haproxy: string;
}

const FIX = {
  reach: {
    nginx: 'proxy_pass every path to the nodes (location / { proxy_pass http://tidings; })',
    apache: 'ProxyPass "/" "balancer://tidings/" with a BalancerMember per node (mod_proxy, mod_proxy_http, mod_proxy_balancer)',
    haproxy: 'a frontend whose default_backend lists the nodes, in mode http',
  },
  upgrade: {
    nginx: 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; (with map $http_upgrade $connection_upgrade { default upgrade; \'\' \'\'; })',
    apache: 'upgrade=websocket on every BalancerMember (2.4.47+), or mod_proxy_wstunnel for /websockets/ and /socket.io/',
    haproxy: 'mode http passes WebSocket upgrades by itself; do not set "option httpclose"; add "timeout tunnel 75s"',
  },
  buffering: {
    nginx: 'proxy_buffering off; (and no proxy_cache, no gzip for text/event-stream) for /api/push/events, /api/push/poll and /socket.io/',
    apache: 'flushpackets=on on the ProxyPass, and no mod_deflate for text/event-stream (SetEnvIf Request_URI ^/api/push/ no-gzip)',
    haproxy: 'no "compression" filter for text/event-stream; HAProxy streams responses by itself',
  },
  idle: {
    nginx: 'proxy_read_timeout 75s; proxy_send_timeout 75s; (above tidings.longpoll.holdSeconds, 40 s, and the Socket.IO ping, 25 s)',
    apache: 'ProxyTimeout 75 and Timeout 75',
    haproxy: 'timeout server 75s, timeout client 75s, timeout tunnel 75s (upgraded connections)',
  },
  host: {
    nginx: 'proxy_set_header Host $http_host; (the browser\'s Host: tidings checks the Origin against it)',
    apache: 'ProxyPreserveHost On',
    haproxy: 'HAProxy keeps the Host by default: remove any "http-request set-header Host"',
  },
  forwardedFor: {
    nginx: 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme;',
    apache: 'mod_proxy sends X-Forwarded-For by itself; RequestHeader set X-Forwarded-Proto "https" in the TLS virtual host',
    haproxy: 'option forwardfor, and http-request set-header X-Forwarded-Proto https if { ssl_fc }',
  },
  trust: {
    nginx: 'in tidings: list the proxy\'s address in tidings.http.trustedProxies',
    apache: 'in tidings: list the proxy\'s address in tidings.http.trustedProxies',
    haproxy: 'in tidings: list the proxy\'s address in tidings.http.trustedProxies',
  },
} satisfies Record<string, Fix>;

interface Echo {
  nodeId: string;
  clientIp: string;
  peer: string;
  peerTrusted: boolean;
  host: string | null;
  headers: Record<string, string | null>;
}

export async function runDiag(base: string, o: DiagOptions): Promise<number> {
  const url = new URL(base.replace(/\/$/, '') + '/');
  let problems = 0;
  const ok = (what: string) => o.print(`ok    ${what}`);
  const note = (what: string) => o.print(`note  ${what}`);
  const fail = (what: string, fix: Fix) => {
    problems++;
    o.print(`FAIL  ${what}`);
    o.print(`      nginx:   ${fix.nginx}`);
    o.print(`      Apache:  ${fix.apache}`);
    o.print(`      HAProxy: ${fix.haproxy}`);
  };

  o.print(`tidings diag ${url.origin}`);
  let echo: Echo;
  try {
    const r = await get(new URL('api/diag/echo', url));
    const body = JSON.parse(r.body) as Echo & { error?: { code: string; message: string } };
    if (r.status !== 200 || !body.nodeId) {
      fail(`GET /api/diag/echo answered ${r.status}${body.error ? ` ${body.error.code}: ${body.error.message}` : ''}, not tidings' echo`, FIX.reach);
      return problems;
    }
    echo = body;
  } catch (e) {
    fail(`GET /api/diag/echo: ${(e as Error).message}`, FIX.reach);
    return problems;
  }
  ok(`reached tidings node ${echo.nodeId}`);

  // Who arrives: the Origin check needs the browser's Host, sessions and limits need the client IP.
  const fwdFor = echo.headers['x-forwarded-for'];
  // The Host header itself: it is what tidings compares the browser's Origin with (X-Forwarded-Host is not used).
  const arrivedHost = echo.host;
  o.print(`info  tidings sees client IP ${echo.clientIp} (TCP peer ${echo.peer}), Host ${echo.host ?? '(none)'}, X-Forwarded-For ${fwdFor ?? '(none)'}, X-Forwarded-Proto ${echo.headers['x-forwarded-proto'] ?? '(none)'}, X-Forwarded-Host ${echo.headers['x-forwarded-host'] ?? '(none)'}`);
  if (arrivedHost !== url.host) fail(`the Host that arrives (${arrivedHost ?? 'none'}) is not the one asked for (${url.host}): browsers' sockets would be refused with TIDINGS_ORIGIN_FORBIDDEN`, FIX.host);
  else ok(`Host ${url.host} arrives`);
  // Any forwarding header, or a Host other than the one asked for, says that something stands in front
  // (HAProxy without `option forwardfor` keeps the Host but may still set X-Forwarded-Proto).
  const proxied = fwdFor !== null || arrivedHost !== url.host || ['via', 'forwarded', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host'].some((h) => echo.headers[h] !== null);
  if (!proxied) note('no X-Forwarded-For, Forwarded or Via arrived: either nothing stands in front of this node, or the proxy does not say whom it forwards for');
  else if (fwdFor === null) fail('the proxy does not send X-Forwarded-For: tidings cannot know the client IP', FIX.forwardedFor);
  else if (!echo.peerTrusted) fail(`X-Forwarded-For arrives, but tidings does not trust the proxy (${echo.peer}): it takes the proxy's address for the client's`, FIX.trust);
  else ok(`client IP ${echo.clientIp} taken from X-Forwarded-For`);
  if (proxied && url.protocol === 'https:' && echo.headers['x-forwarded-proto'] !== 'https') fail('the proxy does not send X-Forwarded-Proto: https', FIX.forwardedFor);

  // The transports' own paths: a proxy with a location per path may route some of them elsewhere.
  // Without a session tidings refuses them with its JSON error, which proves they reach it.
  for (const path of ['socket.io/?EIO=4&transport=polling', 'api/push/poll', 'api/push/events']) {
    const shown = `/${path.split('?')[0]}`;
    try {
      const r = await get(new URL(path, url));
      const code = /"code":"(TIDINGS_\w+)"/.exec(r.body)?.[1];
      if (code === undefined) fail(`${shown} does not reach tidings: HTTP ${r.status} without tidings' JSON error`, FIX.reach);
      else if (code === 'TIDINGS_NOT_FOUND') note(`${shown} reaches tidings, but this node does not serve it (an older version?)`);
      else ok(`${shown} reaches tidings (${r.status} ${code} without a session, as it should)`);
    } catch (e) {
      fail(`${shown}: ${(e as Error).message}`, FIX.reach);
    }
  }

  const ws = await wsCheck(url, 0);
  if (ws === null) ok('WebSocket upgrade on /websockets/ passes; frames flow both ways');
  else fail(`WebSocket upgrade on /websockets/ did not pass: ${ws}`, FIX.upgrade);

  for (const format of ['sse', 'chunked'] as const) {
    const what = format === 'sse' ? 'Server-Sent Events' : 'streamed responses';
    try {
      const r = await streamCheck(new URL(`api/diag/stream?format=${format}&gapMs=${o.gapMs}`, url), o.gapMs);
      if (r.status !== 200) fail(`${what}: GET /api/diag/stream answered ${r.status}`, FIX.buffering);
      else if (r.gapMs < o.gapMs / 2) fail(`${what} are buffered: the first chunk arrived with the second (${r.gapMs} ms apart, sent ${o.gapMs} ms apart)`, FIX.buffering);
      else ok(`${what} are not buffered (chunks ${r.gapMs} ms apart, sent ${o.gapMs} ms apart)`);
    } catch (e) {
      fail(`${what}: ${(e as Error).message}`, FIX.buffering);
    }
  }

  o.print(`…     holding an idle request and an idle WebSocket for ${o.idleSeconds} s (--idle SECONDS)`);
  const t0 = Date.now();
  const [http, idleWs] = await Promise.all([
    get(new URL(`api/diag/idle?seconds=${o.idleSeconds}`, url), (o.idleSeconds + 30) * 1000).then(
      (r) => ({ status: r.status, error: null, took: Math.round((Date.now() - t0) / 1000) }),
      (e: Error) => ({ status: 0, error: e.message, took: Math.round((Date.now() - t0) / 1000) }),
    ),
    ws === null ? wsCheck(url, o.idleSeconds) : Promise.resolve(undefined),
  ]);
  if (http.status === 200) ok(`an idle request outlives ${o.idleSeconds} s`);
  else if (http.error) fail(`an idle request was cut after ${http.took} s: ${http.error}`, FIX.idle);
  else fail(`an idle request was cut after ${http.took} s with HTTP ${http.status}: the proxy's read timeout is shorter than ${o.idleSeconds} s`, FIX.idle);
  if (idleWs === null) ok(`an idle WebSocket outlives ${o.idleSeconds} s`);
  else if (idleWs !== undefined) fail(`an idle WebSocket was cut: ${idleWs}`, FIX.idle);
  o.print(problems === 0 ? 'no problems found' : `${problems} problem${problems === 1 ? '' : 's'} found`);
  return problems;
}

function send(url: URL, timeoutMs: number, onResponse: (res: IncomingMessage) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers: { accept: '*/*' } }, (res) => {
      onResponse(res);
      res.on('end', () => resolve());
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('the connection was closed before the answer was complete')));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new Error(e.code === 'ECONNRESET' ? 'the connection was reset' : e.code ?? e.message)));
    req.end();
  });
}

async function get(url: URL, timeoutMs = 15_000): Promise<{ status: number; body: string }> {
  let status = 0;
  let body = '';
  await send(url, timeoutMs, (res) => {
    status = res.statusCode ?? 0;
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
  });
  return { status, body };
}

/** When each of the two chunks arrived; a buffering proxy hands both over at once. */
async function streamCheck(url: URL, gapMs: number): Promise<{ status: number; gapMs: number }> {
  let status = 0;
  let text = '';
  const at: number[] = [];
  await send(url, gapMs + 15_000, (res) => {
    status = res.statusCode ?? 0;
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      text += c;
      const seen = (text.match(/"chunk":\d/g) ?? []).length;
      while (at.length < seen) at.push(Date.now());
    });
  });
  if (status === 200 && at.length < 2) throw new Error(`the answer held ${at.length} of 2 chunks`);
  return { status, gapMs: at.length === 2 ? at[1] - at[0] : 0 };
}

/** null when the upgrade passed and, after `idleSeconds` of silence, a message went each way; else what happened. */
function wsCheck(base: URL, idleSeconds: number): Promise<string | null> {
  const target = new URL('websockets/tidings-diag', base);
  target.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return new Promise((resolve) => {
    const ws = new WebSocket(target, { handshakeTimeout: 10_000 });
    let got = 0;
    const done = (why: string | null) => {
      clearTimeout(timer);
      clearTimeout(idle);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve(why);
    };
    const opened = Date.now();
    let idle: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => done('no answer in time'), (idleSeconds + 10) * 1000);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => done(`HTTP ${res.statusCode} came back instead of 101 Switching Protocols${/"code":"(TIDINGS_\w+)"/.test(body) ? ` (${/"code":"(TIDINGS_\w+)"/.exec(body)![1]}: the Upgrade header did not arrive)` : ''}`));
      res.on('error', () => done(`HTTP ${res.statusCode} came back instead of 101 Switching Protocols`));
    });
    ws.on('error', (e) => done(e.message));
    ws.on('message', (data) => {
      got++;
      const m = JSON.parse(String(data)) as { type: string };
      if (got === 1 && m.type === 'echo') idle = setTimeout(() => ws.send('diag ping'), idleSeconds * 1000);
      else if (m.type === 'reply') done(null);
    });
    ws.on('close', (code) => {
      if (got < 2) done(`closed (${code}) after ${Math.round((Date.now() - opened) / 1000)} s and ${got} message(s)`);
    });
  });
}
