import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ADMIN_TOKEN } from '../helpers/config-dir.js';
import { collect, connectPlainWs, connectSocketIo, login, push, startNode, type Login, type TestNode } from '../helpers/node.js';
import { rawRequest, upgradeHead } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

const ALICE = '3@1';

/** An Engine.IO polling session opened by hand: handshake, namespace connect, the connect answer. */
async function pollingSession(url: string, l: Login): Promise<string> {
  const q = `EIO=4&transport=polling&session=${l.session}`;
  const hs = await fetch(`${url}/socket.io/?${q}`, { headers: { cookie: l.cookie } });
  assert.equal(hs.status, 200);
  const sid = (JSON.parse((await hs.text()).slice(1)) as { sid: string }).sid;
  const c = await fetch(`${url}/socket.io/?${q}&sid=${sid}`, { method: 'POST', headers: { cookie: l.cookie, 'content-type': 'text/plain;charset=UTF-8' }, body: '40' });
  assert.equal(await c.text(), 'ok');
  const got = await fetch(`${url}/socket.io/?${q}&sid=${sid}`, { headers: { cookie: l.cookie } });
  assert.match(await got.text(), /^40/);
  return sid;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && !line.startsWith('#')) sum += Number(line.split(' ').pop());
  return sum;
}

describe('an Engine.IO sid does not bypass the gate', () => {
  let n: TestNode;
  let alice: Login;
  let bob: Login;
  before(async () => {
    n = await startNode({ properties: { 'tidings.http.allowedOrigins': 'https://mail.example.com' } });
    alice = await login(n.url, 'alice@example.com', 'alice-pw');
    bob = await login(n.url, 'bob@example.com', 'bob-pw');
  });
  after(() => n.stop());

  it("upgrading a victim's polling sid with the attacker's own session and cookie is 403, and the victim keeps its events", async () => {
    const victim = await connectSocketIo(n.url, alice, { transports: ['polling'] });
    try {
      const sid = victim.io.engine.id;
      const got = collect(victim, 'ox:mail:new');
      const path = `/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}&session=${bob.session}`;
      const a = await rawRequest(n.url, upgradeHead(n.url, path, { Cookie: bob.cookie }));
      assert.equal(a.status, 403);
      assert.equal(a.json?.error?.code, 'TIDINGS_SID_FORBIDDEN');
      // Without the session parameter, and with the victim's session but the attacker's cookie.
      const noSession = await rawRequest(n.url, upgradeHead(n.url, `/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}`, { Cookie: bob.cookie }));
      assert.deepEqual([noSession.status, noSession.json?.error?.code], [401, 'TIDINGS_SESSION_MISSING']);
      const wrongCookie = await rawRequest(n.url, upgradeHead(n.url, `/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}&session=${alice.session}`, { Cookie: bob.cookie }));
      assert.deepEqual([wrongCookie.status, wrongCookie.json?.error?.code], [403, 'TIDINGS_SECRET_WRONG']);
      assert.equal((await push(n.url, { context: 1, user: 3, event: 'ox:mail:new', data: { n: 1 } })).status, 202);
      await waitFor('the victim to get its event', () => got.length === 1);
      assert.equal(victim.io.engine.transport.name, 'polling');
    } finally {
      victim.close();
    }
  });

  it("a POSTed close packet on a victim's sid from a foreign Origin without a cookie is 403, and the victim stays connected", async () => {
    const victim = await connectSocketIo(n.url, alice, { transports: ['polling'] });
    try {
      const sid = encodeURIComponent(victim.io.engine.id);
      const post = (query: string, headers: Record<string, string>) => fetch(`${n.url}/socket.io/?EIO=4&transport=polling&sid=${sid}${query}`, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', ...headers }, body: '1' });
      const foreign = await post('', { origin: 'https://evil.example.net' });
      assert.deepEqual([foreign.status, ((await foreign.json()) as any).error.code], [403, 'TIDINGS_ORIGIN_FORBIDDEN']);
      const bare = await post('', {});
      assert.deepEqual([bare.status, ((await bare.json()) as any).error.code], [401, 'TIDINGS_SESSION_MISSING']);
      const asBob = await post(`&session=${bob.session}`, { cookie: bob.cookie });
      assert.deepEqual([asBob.status, ((await asBob.json()) as any).error.code], [403, 'TIDINGS_SID_FORBIDDEN']);
      const poll = await fetch(`${n.url}/socket.io/?EIO=4&transport=polling&sid=${sid}&session=${bob.session}`, { headers: { cookie: bob.cookie } });
      assert.deepEqual([poll.status, ((await poll.json()) as any).error.code], [403, 'TIDINGS_SID_FORBIDDEN']);
      const got = collect(victim, 'ox:mail:new');
      await push(n.url, { context: 1, user: 3, event: 'ox:mail:new', data: { n: 2 } });
      await waitFor('the victim to get its event', () => got.length === 1);
      assert.equal(victim.connected, true);
    } finally {
      victim.close();
    }
  });

  it("a poll naming the attacker's own sid and then the victim's (Engine.IO reads the last) is 400, and the victim's event stays the victim's", async () => {
    const victim = await connectSocketIo(n.url, alice, { transports: ['polling'] });
    try {
      const own = await pollingSession(n.url, bob);
      const victimSid = encodeURIComponent(victim.io.engine.id);
      const got = collect(victim, 'ox:mail:new');
      const stolen = fetch(`${n.url}/socket.io/?EIO=4&transport=polling&session=${bob.session}&sid=${own}&sid=${victimSid}`, { headers: { cookie: bob.cookie } });
      await push(n.url, { context: 1, user: 3, event: 'ox:mail:new', data: { n: 3 } });
      const r = await stolen;
      const text = await r.text();
      assert.equal(r.status, 400, text);
      assert.equal(JSON.parse(text).error.code, 'TIDINGS_REPEATED_PARAMETER');
      await waitFor('the victim to get its event', () => got.length === 1);
    } finally {
      victim.close();
    }
  });

  it('sids name their node, so a node can tell another node\'s session from a lost one', async () => {
    const sid = await pollingSession(n.url, alice);
    assert.equal(Buffer.from(sid.split('.')[0], 'base64url').toString(), n.node.nodeId);
    const foreign = `${Buffer.from('some-other-node').toString('base64url')}.${'A'.repeat(20)}`;
    const r = await fetch(`${n.url}/socket.io/?EIO=4&transport=polling&sid=${foreign}&session=${alice.session}`, { headers: { cookie: alice.cookie } });
    const body = (await r.json()) as any;
    assert.deepEqual([r.status, body.error.code], [400, 'TIDINGS_SID_UNKNOWN']);
    assert.match(body.error.message, /some-other-node/);
    await fetch(`${n.url}/socket.io/?EIO=4&transport=polling&sid=${sid}&session=${alice.session}`, { method: 'POST', headers: { cookie: alice.cookie }, body: '1' });
  });
});

describe('a refused upgrade keeps no connection slot (memory)', () => {
  let n: TestNode;
  let alice: Login;
  before(async () => {
    n = await startNode({ properties: { 'tidings.connections.maxPerUser': 2 } });
    alice = await login(n.url, 'alice@example.com', 'alice-pw');
  });
  after(() => n.stop());

  const count = () => n.node.backends.registry.countFor(ALICE);
  const ws = (extra = '') => `/websockets/x?session=${alice.session}${extra}`;
  const sio = () => `/socket.io/?EIO=4&transport=websocket&session=${alice.session}`;
  const cases: [string, () => string, Record<string, string | null>, string, number, string][] = [
    ['Sec-WebSocket-Key: garbage', ws, { 'Sec-WebSocket-Key': 'garbage' }, 'GET', 400, 'TIDINGS_BAD_UPGRADE'],
    ['no Sec-WebSocket-Key', ws, { 'Sec-WebSocket-Key': null }, 'GET', 400, 'TIDINGS_BAD_UPGRADE'],
    ['Sec-WebSocket-Version: 99', ws, { 'Sec-WebSocket-Version': '99' }, 'GET', 400, 'TIDINGS_BAD_UPGRADE'],
    ['Upgrade: h2c', ws, { Upgrade: 'h2c' }, 'GET', 400, 'TIDINGS_BAD_UPGRADE'],
    ['POST', ws, { 'Content-Length': '0' }, 'POST', 405, 'TIDINGS_METHOD_NOT_ALLOWED'],
    ['a bad subprotocol', ws, { 'Sec-WebSocket-Protocol': 'bad proto' }, 'GET', 400, 'TIDINGS_BAD_UPGRADE'],
    ['a bad key on the Socket.IO WebSocket', sio, { 'Sec-WebSocket-Key': 'garbage' }, 'GET', 400, 'TIDINGS_BAD_UPGRADE'],
  ];
  for (const [what, path, over, method, status, code] of cases) {
    it(`${what}: ${status} ${code} in JSON, and the user's count is unchanged`, async () => {
      const before = await count();
      for (let i = 0; i < 3; i++) {
        const a = await rawRequest(n.url, upgradeHead(n.url, path(), { Cookie: alice.cookie, ...over }, method));
        assert.equal(a.status, status, a.body);
        assert.match(a.headers['content-type'] ?? '', /^application\/json/);
        assert.equal(a.json?.error?.code, code);
      }
      assert.equal(await count(), before);
      // and the user can still connect: the cap (2) was not eaten by the three refusals
      const c = await connectPlainWs(n.url, alice);
      c.ws.close();
      await waitFor('the slot to be free again', async () => (await count()) === before);
    });
  }

  it('405 names the method it takes, and a bad version names the versions', async () => {
    const post = await rawRequest(n.url, upgradeHead(n.url, ws(), { Cookie: alice.cookie, 'Content-Length': '0' }, 'POST'));
    assert.equal(post.headers.allow, 'GET');
    const v = await rawRequest(n.url, upgradeHead(n.url, ws(), { Cookie: alice.cookie, 'Sec-WebSocket-Version': '99' }));
    assert.equal(v.headers['sec-websocket-version'], '13, 8');
  });
});

describe("Engine.IO's and ws's own refusals leave as tidings JSON", () => {
  let n: TestNode;
  let alice: Login;
  before(async () => {
    n = await startNode({ properties: { 'tidings.http.maxBodyBytes': 4096 } });
    alice = await login(n.url, 'alice@example.com', 'alice-pw');
  });
  after(() => n.stop());

  async function answer(path: string, init: RequestInit = {}): Promise<[number, string]> {
    const r = await fetch(`${n.url}${path}`, { ...init, headers: { cookie: alice.cookie, ...(init.headers as Record<string, string>) } });
    const text = await r.text();
    let code = `not JSON: ${JSON.stringify(text)}`;
    try {
      code = JSON.parse(text).error.code;
    } catch { /* keeps the text */ }
    return [r.status, code];
  }
  const s = () => `session=${alice.session}`;

  it('an unknown or missing transport', async () => {
    assert.deepEqual(await answer(`/socket.io/?EIO=4&transport=foo&${s()}`), [400, 'TIDINGS_TRANSPORT_UNKNOWN']);
    assert.deepEqual(await answer(`/socket.io/?EIO=4&${s()}`), [400, 'TIDINGS_TRANSPORT_UNKNOWN']);
  });
  it('Engine.IO 3, or no EIO at all', async () => {
    assert.deepEqual(await answer(`/socket.io/?EIO=3&transport=polling&${s()}`), [400, 'TIDINGS_EIO_VERSION']);
    assert.deepEqual(await answer(`/socket.io/?transport=polling&${s()}`), [400, 'TIDINGS_EIO_VERSION']);
  });
  it('a handshake by POST, and a polling request by PUT', async () => {
    assert.deepEqual(await answer(`/socket.io/?EIO=4&transport=polling&${s()}`, { method: 'POST', body: '40' }), [405, 'TIDINGS_METHOD_NOT_ALLOWED']);
    const sid = await pollingSession(n.url, alice);
    assert.deepEqual(await answer(`/socket.io/?EIO=4&transport=polling&sid=${sid}&${s()}`, { method: 'PUT', body: '1' }), [405, 'TIDINGS_METHOD_NOT_ALLOWED']);
  });
  it('transport=websocket without an upgrade', async () => {
    assert.deepEqual(await answer(`/socket.io/?EIO=4&transport=websocket&${s()}`), [400, 'TIDINGS_EIO_BAD_REQUEST']);
  });
  it('a key the gate or Engine.IO reads, given twice, is 400 TIDINGS_REPEATED_PARAMETER on every way in', async () => {
    const sid = await pollingSession(n.url, alice);
    const polling = [
      `EIO=4&transport=polling&${s()}&${s()}`,
      `EIO=4&EIO=4&transport=polling&${s()}`,
      `EIO=4&transport=polling&transport=polling&${s()}`,
      `EIO=4&transport=polling&${s()}&connection=a&connection=b`,
      `EIO=4&transport=polling&sid=${sid}&sid=${sid}&${s()}`,
      `EIO=4&transport=polling&sid=${sid}&${s()}&${s()}`,
    ];
    for (const q of polling) assert.deepEqual(await answer(`/socket.io/?${q}`), [400, 'TIDINGS_REPEATED_PARAMETER'], q);
    assert.deepEqual(await answer(`/socket.io/?EIO=4&transport=polling&${s()}&connection=has%20a%20blank`), [400, 'TIDINGS_BAD_REQUEST']);
    for (const path of [`/socket.io/?EIO=4&transport=websocket&${s()}&${s()}`, `/socket.io/?EIO=4&transport=websocket&sid=${sid}&sid=${sid}&${s()}`, `/websockets/x?${s()}&${s()}`, `/websockets/x?${s()}&connection=a&connection=b`]) {
      const a = await rawRequest(n.url, upgradeHead(n.url, path, { Cookie: alice.cookie }));
      assert.deepEqual([a.status, a.json?.error?.code], [400, 'TIDINGS_REPEATED_PARAMETER'], path);
    }
  });
  it('an unknown sid ("Session ID unknown")', async () => {
    assert.deepEqual(await answer(`/socket.io/?EIO=4&transport=polling&sid=nosuchsid&${s()}`), [400, 'TIDINGS_SID_UNKNOWN']);
  });
  it('a second poll while one is pending (a bare 400 from Engine.IO)', async () => {
    const sid = await pollingSession(n.url, alice);
    const first = fetch(`${n.url}/socket.io/?EIO=4&transport=polling&sid=${sid}&${s()}`, { headers: { cookie: alice.cookie } });
    // The first poll is held until there is something to send; wait until the server holds it.
    await waitFor('the first poll to be held', async () => (await metric(n.url, 'tidings_connections')) >= 1);
    let second: [number, string] = [0, ''];
    await waitFor('the overlapping poll to be refused', async () => {
      second = await answer(`/socket.io/?EIO=4&transport=polling&sid=${sid}&${s()}`);
      return second[0] === 400;
    });
    assert.deepEqual(second, [400, 'TIDINGS_EIO_BAD_REQUEST']);
    await first.then((r) => r.text()).catch(() => undefined);
  });
  it('a polling body over the limit, by Content-Length and chunked (a bare 413 from Engine.IO)', async () => {
    const sid = await pollingSession(n.url, alice);
    const big = '4' + 'x'.repeat(8000);
    assert.deepEqual(await answer(`/socket.io/?EIO=4&transport=polling&sid=${sid}&${s()}`, { method: 'POST', body: big, headers: { 'content-type': 'text/plain;charset=UTF-8' } }), [413, 'TIDINGS_BODY_TOO_LARGE']);
    const sid2 = await pollingSession(n.url, alice);
    const chunked = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    assert.deepEqual(await answer(`/socket.io/?EIO=4&transport=polling&sid=${sid2}&${s()}`, { method: 'POST', body: chunked, duplex: 'half', headers: { 'content-type': 'text/plain;charset=UTF-8' } } as RequestInit), [413, 'TIDINGS_BODY_TOO_LARGE']);
  });
  it('an upgrade of a session that is already on a WebSocket, or with transport=polling', async () => {
    const c = await connectSocketIo(n.url, alice, { transports: ['polling', 'websocket'] });
    try {
      await waitFor('the client to upgrade', () => c.io.engine.transport.name === 'websocket');
      const sid = encodeURIComponent(c.io.engine.id);
      const again = await rawRequest(n.url, upgradeHead(n.url, `/socket.io/?EIO=4&transport=websocket&sid=${sid}&${s()}`, { Cookie: alice.cookie }));
      assert.deepEqual([again.status, again.json?.error?.code], [400, 'TIDINGS_EIO_BAD_REQUEST']);
      const polling = await rawRequest(n.url, upgradeHead(n.url, `/socket.io/?EIO=4&transport=polling&${s()}`, { Cookie: alice.cookie }));
      assert.deepEqual([polling.status, polling.json?.error?.code], [400, 'TIDINGS_EIO_BAD_REQUEST']);
    } finally {
      c.close();
    }
  });
});

describe('a slow consumer is closed once its backlog passes tidings.connections.maxQueuedBytes', () => {
  let n: TestNode;
  let alice: Login;
  const LIMIT = 65_536;
  before(async () => {
    n = await startNode({ properties: { 'tidings.connections.maxQueuedBytes': LIMIT, 'tidings.http.maxBodyBytes': 4_000_000, 'tidings.connections.maxPerUser': 20 } });
    alice = await login(n.url, 'alice@example.com', 'alice-pw');
  });
  after(() => n.stop());

  const blob = 'x'.repeat(48 * 1024);
  /** Pushes batches of 48 KB events to alice until `done()`, at most `maxBatches` batches of 20. */
  async function flood(done: () => Promise<boolean>, maxBatches = 60): Promise<void> {
    for (let i = 0; i < maxBatches; i++) {
      if (await done()) return;
      const batch = Array.from({ length: 20 }, () => ({ context: 1, user: 3, event: 'ox:big', data: { blob } }));
      assert.equal((await push(n.url, batch as never)).status, 202);
    }
    assert.ok(await done(), 'no slow consumer was closed');
  }

  it('a plain WebSocket that does not read gets close 4429 "slow consumer"; one that reads keeps going', async () => {
    const before = await metric(n.url, 'tidings_slow_consumer_disconnects_total');
    const reader = await connectPlainWs(n.url, alice, { path: '/reader' });
    const slow = await connectPlainWs(n.url, alice, { path: '/slow' });
    const tcp = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    const closed = new Promise<[number, string]>((resolve) => slow.ws.once('close', (code, reason) => resolve([code, String(reason)])));
    await flood(async () => (await metric(n.url, 'tidings_slow_consumer_disconnects_total')) > before);
    tcp.resume();
    assert.deepEqual(await closed, [4429, 'slow consumer']);
    assert.equal(reader.ws.readyState, WebSocket.OPEN);
    reader.ws.close();
    await waitFor('both slots to be free', async () => (await n.node.backends.registry.countFor(ALICE)) === 0);
  });

  it('a Socket.IO polling session that stops polling is closed, and its sid is gone', async () => {
    const before = await metric(n.url, 'tidings_slow_consumer_disconnects_total{transport="polling"}');
    const sid = await pollingSession(n.url, alice);
    await flood(async () => (await metric(n.url, 'tidings_slow_consumer_disconnects_total{transport="polling"}')) > before);
    const r = await fetch(`${n.url}/socket.io/?EIO=4&transport=polling&sid=${sid}&session=${alice.session}`, { headers: { cookie: alice.cookie } });
    assert.deepEqual([r.status, ((await r.json()) as any).error.code], [400, 'TIDINGS_SID_UNKNOWN']);
    await waitFor('the slot to be free', async () => (await n.node.backends.registry.countFor(ALICE)) === 0);
  });

  it('a Socket.IO WebSocket that does not read is closed', async () => {
    const before = await metric(n.url, 'tidings_slow_consumer_disconnects_total{transport="websocket"}');
    const ws = new WebSocket(`${n.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket&session=${alice.session}`, { headers: { cookie: alice.cookie } });
    const frames: string[] = [];
    ws.on('message', (d) => frames.push(String(d)));
    await waitFor('the open packet', () => frames.some((f) => f.startsWith('0')));
    ws.send('40');
    await waitFor('the namespace connect', () => frames.some((f) => f.startsWith('40')));
    const tcp = (ws as unknown as { _socket: { pause(): void } })._socket;
    tcp.pause();
    await flood(async () => (await metric(n.url, 'tidings_slow_consumer_disconnects_total{transport="websocket"}')) > before);
    ws.terminate();
    await waitFor('the slot to be free', async () => (await n.node.backends.registry.countFor(ALICE)) === 0);
  });
});

describe('tidings status counts an upgraded Socket.IO connection as websocket (memory)', () => {
  it('polling, then websocket after the upgrade', async () => {
    const n = await startNode();
    try {
      const alice = await login(n.url, 'alice@example.com', 'alice-pw');
      const c = await connectSocketIo(n.url, alice, { transports: ['polling', 'websocket'] });
      await waitFor('the client to upgrade', () => c.io.engine.transport.name === 'websocket');
      const byTransport = async () => {
        const r = (await (await fetch(`${n.url}/api/admin/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as any;
        return r.members[0].byTransport as Record<string, number>;
      };
      await waitFor('status to count it as websocket', async () => (await byTransport()).websocket === 1);
      assert.deepEqual(await byTransport(), { websocket: 1 });
      c.close();
    } finally {
      await n.stop();
    }
  });
});
