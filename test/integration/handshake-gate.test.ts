import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connectPlainWs, connectSocketIo, login, startNode, type Login, type TestNode } from '../helpers/node.js';

/** Every refusal of the §5 gate, on the plain WebSocket, the Socket.IO WebSocket handshake and the Socket.IO polling handshake. */
describe('handshake gate refusals', () => {
  let n: TestNode;
  let alice: Login;
  const open: WebSocket[] = [];
  before(async () => {
    n = await startNode({ properties: { 'tidings.http.allowedOrigins': 'https://mail.example.com', 'tidings.connections.maxPerUser': 2 } });
    alice = await login(n.url, 'alice@example.com', 'alice-pw');
  });
  after(async () => {
    for (const ws of open) ws.close();
    await n.stop();
  });

  type Attempt = { session?: string | null; cookie?: string | null; origin?: string; connection?: string };
  const ws = (u: string) => u.replace(/^http/, 'ws');

  /** Raw upgrade to `path`; resolves with the refusal's status and JSON body, or 'open'. */
  function tryUpgrade(path: string, a: Attempt): Promise<{ status: number; code?: string; retryAfter?: string } | 'open'> {
    const q = new URLSearchParams();
    const session = a.session === undefined ? alice.session : a.session;
    if (session) q.set('session', session);
    if (a.connection) q.set('connection', a.connection);
    if (path.startsWith('/socket.io')) {
      q.set('EIO', '4');
      q.set('transport', 'websocket');
    }
    const headers: Record<string, string> = {};
    const cookie = a.cookie === undefined ? alice.cookie : a.cookie;
    if (cookie) headers.cookie = cookie;
    if (a.origin) headers.origin = a.origin;
    const client = new WebSocket(`${ws(n.url)}${path}?${q}`, { headers });
    return new Promise((resolve, reject) => {
      client.once('open', () => {
        open.push(client);
        resolve('open');
      });
      client.once('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: JSON.parse(text).error.code, retryAfter: res.headers['retry-after'] as string | undefined }));
      });
      client.once('error', reject);
    });
  }

  /** The Socket.IO polling handshake, as a plain HTTP GET. */
  async function tryPolling(a: Attempt): Promise<{ status: number; code?: string }> {
    const q = new URLSearchParams({ EIO: '4', transport: 'polling' });
    const session = a.session === undefined ? alice.session : a.session;
    if (session) q.set('session', session);
    const headers: Record<string, string> = {};
    const cookie = a.cookie === undefined ? alice.cookie : a.cookie;
    if (cookie) headers.cookie = cookie;
    if (a.origin) headers.origin = a.origin;
    const res = await fetch(`${n.url}/socket.io/?${q}`, { headers });
    const text = await res.text();
    return res.status === 200 ? { status: 200 } : { status: res.status, code: JSON.parse(text).error.code };
  }

  const cases: [string, Attempt, number, string][] = [
    ['no session parameter', { session: null }, 401, 'TIDINGS_SESSION_MISSING'],
    ['an unknown session', { session: 'f'.repeat(32) }, 401, 'TIDINGS_SESSION_UNKNOWN'],
    ['no secret cookie', { cookie: null }, 403, 'TIDINGS_SECRET_MISSING'],
    ['a wrong secret cookie', { cookie: 'tidings-secret=wrong' }, 403, 'TIDINGS_SECRET_WRONG'],
    ['another session\'s cookie name only', { cookie: 'other=1' }, 403, 'TIDINGS_SECRET_MISSING'],
    ['a foreign Origin', { origin: 'https://evil.example.net' }, 403, 'TIDINGS_ORIGIN_FORBIDDEN'],
  ];
  for (const [what, attempt, status, code] of cases) {
    it(`${what}: ${status} ${code} on every endpoint, before any upgrade`, async () => {
      assert.deepEqual(await tryUpgrade('/websockets/push', attempt), { status, code, retryAfter: undefined }, 'plain WebSocket');
      assert.deepEqual(await tryUpgrade('/socket.io/', attempt), { status, code, retryAfter: undefined }, 'Socket.IO WebSocket');
      assert.deepEqual(await tryPolling(attempt), { status, code }, 'Socket.IO polling');
    });
  }

  it('an allowed Origin and the server\'s own Origin pass', async () => {
    assert.equal(await tryUpgrade('/websockets/origin', { origin: 'https://mail.example.com', connection: 'o1' }), 'open');
    const own = new URL(n.url);
    assert.equal(await tryUpgrade('/websockets/origin', { origin: `http://${own.host}`, connection: 'o2' }), 'open');
    for (const w of open.splice(0)) w.close();
  });

  it('a user over the connection cap gets 429 TIDINGS_TOO_MANY_CONNECTIONS on every endpoint; a freed slot admits again', async () => {
    const bob = await login(n.url, 'bob@example.com', 'bob-pw');
    const a = await connectPlainWs(n.url, bob, { path: '/cap' });
    const b = await connectSocketIo(n.url, bob, { transports: ['websocket'] });
    const third = await connectPlainWs(n.url, bob, { path: '/cap' }).then(() => 'open', (e) => e);
    assert.equal(third.status, 429);
    assert.equal(third.body.error.code, 'TIDINGS_TOO_MANY_CONNECTIONS');
    const viaSio = await connectSocketIo(n.url, bob, { transports: ['polling'] }).then(() => 'open', (e) => e);
    assert.notEqual(viaSio, 'open');
    const poll = await fetch(`${n.url}/socket.io/?EIO=4&transport=polling&session=${bob.session}`, { headers: { cookie: bob.cookie } });
    assert.equal(poll.status, 429);
    assert.equal(((await poll.json()) as any).error.code, 'TIDINGS_TOO_MANY_CONNECTIONS');
    b.close();
    a.ws.close();
    // The slots free up when the server sees the closes; a new connection is admitted then.
    const deadline = Date.now() + 5000;
    let again: any;
    do {
      again = await connectPlainWs(n.url, bob, { path: '/cap' }).catch((e) => e);
    } while (again.status === 429 && Date.now() < deadline);
    assert.ok(again.ws, `expected a connection once slots were freed, got ${again.status}`);
    again.ws.close();
  });

  it('a duplicate connection id for the same user is refused with 409 TIDINGS_DUPLICATE_CONNECTION; another user may use it', async () => {
    assert.equal(await tryUpgrade('/websockets/dup', { connection: 'same-id' }), 'open');
    assert.deepEqual(await tryUpgrade('/websockets/dup', { connection: 'same-id' }), { status: 409, code: 'TIDINGS_DUPLICATE_CONNECTION', retryAfter: undefined });
    assert.deepEqual(await tryUpgrade('/socket.io/', { connection: 'same-id' }), { status: 409, code: 'TIDINGS_DUPLICATE_CONNECTION', retryAfter: undefined });
    const carol = await login(n.url, 'carol@other.org', 'carol-pw');
    const c = await connectPlainWs(n.url, carol, { path: '/dup', connection: 'same-id' });
    c.ws.close();
    for (const w of open.splice(0)) w.close();
  });

  it('a user whose mail is disabled cannot log in', async () => {
    const res = await fetch(`${n.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'dave@example.com', password: 'dave-pw' }) });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as any).error.code, 'TIDINGS_USER_DISABLED');
  });

  it('an upgrade to an unknown path is refused with 404 JSON', async () => {
    assert.deepEqual(await tryUpgrade('/nowhere', {}), { status: 404, code: 'TIDINGS_NOT_FOUND', retryAfter: undefined });
  });
});

describe('strict client-IP check', () => {
  it('refuses a socket from another IP than the login\'s with 403 TIDINGS_IP_MISMATCH', async () => {
    const n = await startNode({ properties: { 'tidings.session.ipCheck': true, 'tidings.http.trustedProxies': '127.0.0.1' } });
    try {
      const l = await login(n.url, 'alice@example.com', 'alice-pw');
      const sameIp = await connectPlainWs(n.url, l, {}).then((c) => (c.ws.close(), 'open'), (e) => e);
      // login came from 127.0.0.1; a forwarded address on the socket request differs
      assert.equal(sameIp, 'open');
      const ws = new WebSocket(`${n.url.replace(/^http/, 'ws')}/websockets/ip?session=${l.session}`, { headers: { cookie: l.cookie, 'x-forwarded-for': '203.0.113.9' } });
      const status = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
      });
      assert.equal(status, 403);
    } finally {
      await n.stop();
    }
  });
});
