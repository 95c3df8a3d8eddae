/**
 * Issue 9, the HTTP side: bad input an attacker (or a buggy back end) sends gets a 4xx in the
 * tidings shape and costs nothing else: reserved event names, over-deep data, repeated query keys,
 * admin keys outside the cascade, bodies far over the limit, and requests node or fastify refuse
 * before any route runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { buildHttp } from '../../src/http/app.js';
import { ADMIN_TOKEN, PUSH_TOKEN } from '../helpers/config-dir.js';
import { connectPlainWs, login, push, startNode, testLog, type TestNode } from '../helpers/node.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';

const RESERVED = ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'];

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/api/push`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${PUSH_TOKEN}` }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function admin(url: string, method: string, path: string, body?: string): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers, body });
  return { status: res.status, json: await res.json() };
}

/** `{"a":{"a":…1…}}`, `levels` objects deep. */
function nested(levels: number): unknown {
  return JSON.parse('{"a":'.repeat(levels) + '1' + '}'.repeat(levels));
}

interface RawAnswer {
  /** A socket error the client saw (ECONNRESET, EPIPE), or null. */
  error: string | null;
  status: number;
  headers: string;
  body: string;
}

/**
 * Sends `head` and then `bodyBytes` bytes of body (chunked or not) on a raw socket, as fast as the
 * server takes them, then half-closes and reads whatever answer comes back.
 */
function rawRequest(port: number, head: string, opts: { bodyBytes?: number; chunked?: boolean; endAfterMs?: number } = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let error: string | null = null;
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    s.on('close', () => {
      const text = Buffer.concat(got).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const headers = split < 0 ? text : text.slice(0, split);
      resolve({ error, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), headers, body: split < 0 ? '' : text.slice(split + 4) });
    });
    s.write(head);
    void (async () => {
      const total = opts.bodyBytes ?? 0;
      const block = Buffer.alloc(65_536, 'x');
      for (let sent = 0; sent < total && !s.destroyed;) {
        const n = Math.min(block.length, total - sent);
        const piece = opts.chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), block.subarray(0, n), Buffer.from('\r\n')]) : block.subarray(0, n);
        if (!s.write(piece)) await new Promise((r) => { s.once('drain', r); s.once('close', r); });
        sent += n;
      }
      if (opts.chunked && !s.destroyed) s.write('0\r\n\r\n');
      if (opts.endAfterMs === undefined) s.end();
      else setTimeout(() => s.end(), opts.endAfterMs).unref();
    })();
  });
}

function tidingsError(a: RawAnswer, status: number, code: string): void {
  assert.equal(a.error, null, `no reset; got ${a.error}`);
  assert.equal(a.status, status, a.headers);
  assert.match(a.headers, /content-type: application\/json/i);
  const j = JSON.parse(a.body) as { error: { code: string; message: string } };
  assert.equal(j.error.code, code);
  assert.equal(typeof j.error.message, 'string');
  assert.deepEqual(Object.keys(j), ['error']);
}

describe('publish: reserved names and deep data are 400, and cost no other event', () => {
  let n: TestNode;
  before(async () => {
    n = await startNode({});
  });
  after(() => n.stop());

  it('each of Socket.IO\'s reserved names, and tidings:not-recovered, (and session:invalid, server:restart) is 400 TIDINGS_RESERVED_EVENT, alone and in a batch; the user\'s plain WebSocket still gets the next event', async () => {
    const l = await login(n.url, 'alice@example.com', 'alice-pw');
    const c = await connectPlainWs(n.url, l, {});
    try {
      for (const event of RESERVED) {
        const one = await post(n.url, { context: 1, user: 3, event, data: 1 });
        assert.deepEqual([one.status, one.json.error.code], [400, 'TIDINGS_RESERVED_EVENT'], event);
        assert.match(one.json.error.message, new RegExp(`'${event}' is reserved`));
        const batch = await post(n.url, [{ context: 1, user: 3, event: 'fine', data: 0 }, { context: 1, user: 4, event, data: 1 }]);
        assert.deepEqual([batch.status, batch.json.error.code, batch.json.error.details.index], [400, 'TIDINGS_RESERVED_EVENT', 1], event);
      }
      // tidings' own answer to a resume that cannot be replayed: a publisher must not fake it.
      const ours = await post(n.url, { context: 1, user: 3, event: 'tidings:not-recovered', data: { reason: 'trimmed' } });
      assert.deepEqual([ours.status, ours.json.error.code], [400, 'TIDINGS_RESERVED_EVENT']);
      assert.match(ours.json.error.message, /'tidings:not-recovered' is reserved by tidings/);
      for (const event of ['session:invalid', 'server:restart']) {
        const own = await post(n.url, { context: 1, user: 3, event, data: {} });
        assert.deepEqual([own.status, own.json.error.code], [400, 'TIDINGS_RESERVED_EVENT'], event);
        assert.match(own.json.error.message, new RegExp(`'${event}' is reserved by tidings`));
      }
      const oursInBatch = await post(n.url, [{ context: 1, user: 3, event: 'fine', data: 0 }, { context: 1, user: 3, event: 'tidings:not-recovered' }]);
      assert.deepEqual([oursInBatch.status, oursInBatch.json.error.code, oursInBatch.json.error.details.index], [400, 'TIDINGS_RESERVED_EVENT', 1]);
      assert.equal((await push(n.url, { context: 1, user: 3, event: 'after', data: 'ok' })).status, 202);
      await waitFor('the event after the refusals', () => c.frames.length >= 1);
      // Nothing of a refused batch went out: the first frame is the later event.
      assert.deepEqual(c.frames.map((f) => f.name), ['after']);
    } finally {
      c.ws.close();
    }
  });

  it('data nested 5,000 levels is 400 TIDINGS_TOO_DEEP (not a stack overflow); 32 levels pass, 33 do not', async () => {
    const deep = '{"context":1,"user":3,"event":"deep","data":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
    const res = await fetch(`${n.url}/api/push`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${PUSH_TOKEN}` }, body: deep });
    const j = (await res.json()) as any;
    assert.deepEqual([res.status, j.error.code], [400, 'TIDINGS_TOO_DEEP']);
    assert.match(j.error.message, /tidings\.push\.maxDepth/);
    assert.equal((await post(n.url, { context: 1, user: 3, event: 'ok', data: nested(32) })).status, 202);
    const over = await post(n.url, { context: 1, user: 3, event: 'deep', data: nested(33) });
    assert.deepEqual([over.status, over.json.error.code], [400, 'TIDINGS_TOO_DEEP']);
    const inArgs = await post(n.url, { context: 1, user: 3, event: 'deep', args: [1, nested(33)] });
    assert.deepEqual([inArgs.status, inArgs.json.error.code], [400, 'TIDINGS_TOO_DEEP']);
    const inBatch = await post(n.url, [{ context: 1, user: 3, event: 'ok' }, { context: 1, user: 3, event: 'deep', data: nested(40) }]);
    assert.deepEqual([inBatch.status, inBatch.json.error.code, inBatch.json.error.details.index], [400, 'TIDINGS_TOO_DEEP', 1]);
  });

  it('tidings.push.maxDepth is the limit', async () => {
    n.write('tidings.properties', `${(await import('node:fs')).readFileSync(`${n.dir}/tidings.properties`, 'utf8')}tidings.push.maxDepth=3\n`);
    assert.equal(n.node.config.reload().ok, true);
    try {
      assert.equal((await post(n.url, { context: 1, user: 3, event: 'ok', data: nested(3) })).status, 202);
      assert.equal((await post(n.url, { context: 1, user: 3, event: 'deep', data: nested(4) })).status, 400);
    } finally {
      n.write('tidings.properties', (await import('node:fs')).readFileSync(`${n.dir}/tidings.properties`, 'utf8').replace('tidings.push.maxDepth=3\n', ''));
      n.node.config.reload();
    }
  });
});

describe('admin API: repeated query keys, keys outside the cascade, text that is not text', () => {
  let n: TestNode;
  before(async () => {
    n = await startNode({});
  });
  after(() => n.stop());

  it('a query key given twice is 400 TIDINGS_REPEATED_PARAMETER on GET and DELETE', async () => {
    for (const [method, q] of [['GET', 'key=a&key=b&context=1'], ['GET', 'key=com.openexchange.websockets.enabled&context=1&context=2'], ['DELETE', 'key=a&key=b&context=1'], ['DELETE', 'key=com.openexchange.websockets.enabled&context=1&user=3&user=4']]) {
      const r = await admin(n.url, method, `/api/admin/config?${q}`);
      assert.deepEqual([r.status, r.json.error.code], [400, 'TIDINGS_REPEATED_PARAMETER'], `${method} ?${q}`);
    }
  });

  it('a session given twice at logout is 400 (TIDINGS_REPEATED_PARAMETER in the query, TIDINGS_VALIDATION as a list in the body), and the session lives on', async () => {
    const alice = await login(n.url, 'alice@example.com', 'alice-pw');
    const r = await fetch(`${n.url}/api/logout?session=${alice.session}&session=${alice.session}`, { method: 'POST', headers: { cookie: alice.cookie } });
    assert.deepEqual([r.status, ((await r.json()) as any).error.code], [400, 'TIDINGS_REPEATED_PARAMETER']);
    const list = await fetch(`${n.url}/api/logout`, { method: 'POST', headers: { cookie: alice.cookie, 'content-type': 'application/json' }, body: JSON.stringify({ session: [alice.session, alice.session] }) });
    assert.deepEqual([list.status, ((await list.json()) as any).error.code], [400, 'TIDINGS_VALIDATION'], 'a list of sessions in the body is not a missing one');
    const still = await connectPlainWs(n.url, alice);
    still.ws.close();
  });

  it('PUT takes only keys the schema marks cascade-aware', async () => {
    const put = (key: string, value: unknown = 'x') => admin(n.url, 'PUT', '/api/admin/config', JSON.stringify({ key, value, context: 1 }));
    const cases: [string, string, number, string][] = [
      ['a key outside tidings', '{"key":"com.example.theme","value":"dark","context":1}', 400, 'TIDINGS_UNKNOWN_KEY'],
      ['an unknown tidings key', '{"key":"tidings.nope","value":"1","context":1}', 400, 'TIDINGS_UNKNOWN_KEY'],
      ['a server-wide key', '{"key":"tidings.http.port","value":"1","context":1}', 400, 'TIDINGS_KEY_SERVER_WIDE'],
      ['a control character in the key', '{"key":"com.openexchange.websockets.enabled\\u0007","value":"true","context":1}', 400, 'TIDINGS_VALIDATION'],
      ['a control character in the value', '{"key":"com.openexchange.websockets.enabled","value":"true\\u0000","context":1}', 400, 'TIDINGS_VALIDATION'],
      ['a lone surrogate in the key', '{"key":"x\\ud800","value":"1","context":1}', 400, 'TIDINGS_VALIDATION'],
      ['a lone surrogate in the value', '{"key":"com.openexchange.websockets.enabled","value":"\\udc00","context":1}', 400, 'TIDINGS_VALIDATION'],
    ];
    for (const [what, body, status, code] of cases) {
      const r = await admin(n.url, 'PUT', '/api/admin/config', body);
      assert.deepEqual([r.status, r.json.error.code], [status, code], what);
    }
    assert.equal((await put('com.openexchange.websockets.enabled', false)).status, 200);
    assert.equal((await admin(n.url, 'DELETE', '/api/admin/config?key=com.openexchange.websockets.enabled&context=1')).json.removed, true);
  });
});

describe('admin API: run-time values stored under keys PUT now refuses can be deleted (Redis)', () => {
  let redis: RedisServer;
  let n: TestNode;
  before(async () => {
    redis = await startRedis();
    n = await startNode({ properties: { 'tidings.redis.url': redis.url } });
  });
  after(async () => {
    await n?.stop();
    await redis?.stop();
  });

  it('junk an older version stored (foreign key, control character, lone surrogate) is ignored and removable', async () => {
    const store = n.node.backends.configStore;
    const junk = ['com.example.theme', 'bell\u0007key', 'half\ud800'];
    for (const key of junk) await store.set({ contextId: 1, userId: 3, key, value: 'v' });
    await n.node.config.refreshStore();
    // Not in force: GET of the foreign key resolves past it.
    assert.equal((await admin(n.url, 'GET', '/api/admin/config?key=com.example.theme&context=1&user=3')).json.scope, 'default');
    // The lone surrogate went through UTF-8, so it is stored, and deleted, as U+FFFD.
    for (const key of ['com.example.theme', 'bell\u0007key', 'half\ufffd']) {
      const r = await admin(n.url, 'DELETE', `/api/admin/config?${new URLSearchParams({ key, context: '1', user: '3' })}`);
      assert.deepEqual([r.status, r.json.removed], [200, true], JSON.stringify(key));
    }
    assert.deepEqual(await store.all(), []);
    // Once gone, such a key is refused again like any key outside the cascade.
    const again = await admin(n.url, 'DELETE', '/api/admin/config?key=com.example.theme&context=1&user=3');
    assert.deepEqual([again.status, again.json.error.code], [400, 'TIDINGS_UNKNOWN_KEY']);
  });
});

describe('bodies far over the limit get a readable 413, never a reset mid-upload', () => {
  let n: TestNode;
  let port: number;
  before(async () => {
    n = await startNode({});
    port = Number(new URL(n.url).port);
  });
  after(() => n.stop());

  for (const bytes of [1_000_000, 50_000_000]) {
    for (const chunked of [false, true]) {
      it(`${bytes / 1e6} MB, ${chunked ? 'chunked' : 'Content-Length'}: the whole upload goes through and the client reads 413 TIDINGS_BODY_TOO_LARGE`, async () => {
        const head = `POST /api/push HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAuthorization: Bearer ${PUSH_TOKEN}\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${bytes}`}\r\n\r\n`;
        tidingsError(await rawRequest(port, head, { bodyBytes: bytes, chunked }), 413, 'TIDINGS_BODY_TOO_LARGE');
      });
    }
  }

  for (const chunked of [false, true]) {
    it(`a Socket.IO polling POST of 50 MB, ${chunked ? 'chunked' : 'Content-Length'}: the client reads 413 TIDINGS_BODY_TOO_LARGE`, async () => {
      const l = await login(n.url, 'alice@example.com', 'alice-pw');
      const q = `EIO=4&transport=polling&session=${l.session}`;
      const hs = await fetch(`${n.url}/socket.io/?${q}`, { headers: { cookie: l.cookie } });
      const sid = (JSON.parse((await hs.text()).slice(1)) as { sid: string }).sid;
      const head = `POST /socket.io/?${q}&sid=${sid} HTTP/1.1\r\nHost: t\r\nCookie: ${l.cookie}\r\nContent-Type: text/plain;charset=UTF-8\r\n${chunked ? 'Transfer-Encoding: chunked' : 'Content-Length: 50000000'}\r\n\r\n`;
      tidingsError(await rawRequest(port, head, { bodyBytes: 50_000_000, chunked }), 413, 'TIDINGS_BODY_TOO_LARGE');
    });
  }

  it('after a refused body the connection still serves the next request', async () => {
    const big = 100_000;
    const head = `POST /api/push HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${big}\r\n\r\n${'x'.repeat(big)}GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`;
    const a = await rawRequest(port, head);
    assert.equal(a.error, null);
    assert.match(a.headers, /^HTTP\/1\.1 413/);
    assert.match(a.body, /HTTP\/1\.1 200 OK[\s\S]*"status":"live"/);
  });
});

describe('requests node or fastify refuse before any route answer in the tidings shape', () => {
  let n: TestNode;
  let port: number;
  before(async () => {
    n = await startNode({ properties: { 'tidings.http.headersTimeoutMs': 1000 } });
    port = Number(new URL(n.url).port);
  });
  after(() => n.stop());

  const cases: [string, string, number, string][] = [
    ['a request that is not HTTP', 'HELLO THERE\r\n\r\n', 405, 'TIDINGS_METHOD_NOT_ALLOWED'],
    ['an unknown method', 'BREW /api/push HTTP/1.1\r\nHost: t\r\n\r\n', 405, 'TIDINGS_METHOD_NOT_ALLOWED'],
    ['a malformed Content-Length', 'POST /api/push HTTP/1.1\r\nHost: t\r\nContent-Length: ten\r\n\r\n', 400, 'TIDINGS_BAD_REQUEST'],
    ['a header line without a colon', 'GET /health/live HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n', 400, 'TIDINGS_BAD_REQUEST'],
    ['headers over the size limit', `GET /health/live HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`, 431, 'TIDINGS_HEADERS_TOO_LARGE'],
    ['the URL /%', 'GET /% HTTP/1.1\r\nHost: t\r\n\r\n', 400, 'TIDINGS_BAD_URL'],
    ['a bad escape in the URL', 'GET /api/%zz HTTP/1.1\r\nHost: t\r\n\r\n', 400, 'TIDINGS_BAD_URL'],
    ['an HTTP/1.1 request without Host', 'GET /health/live HTTP/1.1\r\n\r\n', 400, 'TIDINGS_BAD_REQUEST'],
    ['a Socket.IO poll without Host', 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n', 400, 'TIDINGS_BAD_REQUEST'],
    ['a WebSocket upgrade without Host', 'GET /websockets/x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 400, 'TIDINGS_BAD_REQUEST'],
    ['a known method on no route', 'PROPFIND /api/push HTTP/1.1\r\nHost: t\r\n\r\n', 404, 'TIDINGS_NOT_FOUND'],
  ];
  for (const [what, text, status, code] of cases) {
    it(`${what} → ${status} ${code}`, async () => {
      tidingsError(await rawRequest(port, text, { endAfterMs: 300 }), status, code);
    });
  }

  it('headers that do not arrive within tidings.http.headersTimeoutMs → 408 TIDINGS_REQUEST_TIMEOUT', async () => {
    // Half a request line, then nothing: node's header timer fires after 1 s (checked every 0.5 s).
    tidingsError(await rawRequest(port, 'GET /health/live HTTP/1.1\r\nHost: t\r\n', { endAfterMs: 8000 }), 408, 'TIDINGS_REQUEST_TIMEOUT');
  });
});

describe('a request that reaches a closing node answers 503 in the tidings shape', () => {
  /** Writes `request` on an open socket and resolves with the next full answer (headers + Content-Length body). */
  function ask(s: Socket, request: string): Promise<{ head: string; body: string }> {
    return new Promise((resolve, reject) => {
      let text = '';
      const onData = (d: Buffer) => {
        text += d.toString('latin1');
        const split = text.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? NaN);
        if (split >= 0 && text.length >= split + 4 + length) {
          s.off('data', onData);
          resolve({ head: text.slice(0, split), body: text.slice(split + 4, split + 4 + length) });
        }
      };
      s.on('data', onData);
      s.once('error', reject);
      s.write(request);
    });
  }

  it('on a keep-alive connection opened before the close', async () => {
    const { app, handler } = buildHttp({ log: testLog(), maxBodyBytes: 65_536, headersTimeoutMs: 60_000 });
    // No socket endpoints here: fastify takes every request, as the dispatcher would hand it on.
    app.server.on('request', handler);
    app.get('/x', async () => ({ ok: true }));
    let s!: Socket;
    let during: Promise<{ head: string; body: string }> | undefined;
    // Runs after tidings' own preClose hook, while the server still has its connections.
    app.addHook('preClose', async () => {
      during = ask(s, 'GET /x HTTP/1.1\r\nHost: t\r\n\r\n');
      await during.catch(() => undefined);
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    s = connect((app.server.address() as { port: number }).port, '127.0.0.1');
    try {
      const first = await ask(s, 'GET /x HTTP/1.1\r\nHost: t\r\n\r\n');
      assert.match(first.head, /^HTTP\/1\.1 200/);
      await app.close();
      const a = await during!;
      assert.match(a.head, /^HTTP\/1\.1 503/);
      assert.equal(JSON.parse(a.body).error.code, 'TIDINGS_SHUTTING_DOWN');
    } finally {
      s.destroy();
    }
  });
});
