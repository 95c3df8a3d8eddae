import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PUSH_TOKEN } from '../helpers/config-dir.js';
import { collect, connectPlainWs, connectSocketIo, login, push, startNode, type TestNode } from '../helpers/node.js';
import { once, waitFor } from '../helpers/wait.js';

async function post(url: string, body: string | undefined, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
}

describe('HTTP API: bad input gets a specific JSON error and loses nothing already accepted', () => {
  let n: TestNode;
  before(async () => {
    n = await startNode({ properties: { 'tidings.http.maxBodyBytes': 4096 } });
  });
  after(() => n.stop());
  const auth = { authorization: `Bearer ${PUSH_TOKEN}` };

  const cases: [string, string | undefined, Record<string, string>, number, string][] = [
    ['malformed JSON', '{"context":1,', auth, 400, 'TIDINGS_BAD_JSON'],
    ['an empty body', '', auth, 400, 'TIDINGS_BAD_JSON'],
    ['a JSON array', '[1,2]', auth, 400, 'TIDINGS_VALIDATION'],
    ['a string user', JSON.stringify({ context: 1, user: 'x', event: 'e' }), auth, 400, 'TIDINGS_VALIDATION'],
    ['a negative context', JSON.stringify({ context: -1, user: 3, event: 'e' }), auth, 400, 'TIDINGS_VALIDATION'],
    ['a missing event', JSON.stringify({ context: 1, user: 3 }), auth, 400, 'TIDINGS_VALIDATION'],
    ['a numeric event', JSON.stringify({ context: 1, user: 3, event: 5 }), auth, 400, 'TIDINGS_VALIDATION'],
    ['args that are not an array', JSON.stringify({ context: 1, user: 3, event: 'e', args: {} }), auth, 400, 'TIDINGS_VALIDATION'],
    ['a numeric pathFilter', JSON.stringify({ context: 1, user: 3, event: 'e', pathFilter: 7 }), auth, 400, 'TIDINGS_VALIDATION'],
    ['an oversize body', JSON.stringify({ context: 1, user: 3, event: 'e', data: 'x'.repeat(5000) }), auth, 413, 'TIDINGS_BODY_TOO_LARGE'],
    ['no bearer token', JSON.stringify({ context: 1, user: 3, event: 'e' }), {}, 401, 'TIDINGS_PUSH_UNAUTHORIZED'],
    ['a wrong bearer token', JSON.stringify({ context: 1, user: 3, event: 'e' }), { authorization: 'Bearer nope' }, 401, 'TIDINGS_PUSH_UNAUTHORIZED'],
    ['an unknown user', JSON.stringify({ context: 1, user: 99, event: 'e' }), auth, 404, 'TIDINGS_UNKNOWN_USER'],
  ];
  for (const [what, body, headers, status, code] of cases) {
    it(`POST /api/push with ${what} → ${status} ${code}`, async () => {
      const r = await post(`${n.url}/api/push`, body, headers);
      assert.equal(r.status, status);
      assert.equal(r.json.error.code, code);
      assert.equal(typeof r.json.error.message, 'string');
      assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    });
  }

  it('a non-JSON content type is 415 with a JSON error', async () => {
    const res = await fetch(`${n.url}/api/push`, { method: 'POST', headers: { 'content-type': 'text/plain', ...auth }, body: 'hello' });
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as any).error.code, 'TIDINGS_UNSUPPORTED_MEDIA_TYPE');
  });

  it('an unknown route is 404 with a JSON error', async () => {
    const res = await fetch(`${n.url}/api/nothing`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as any).error.code, 'TIDINGS_NOT_FOUND');
  });

  it('bad requests in between do not disturb delivery of good ones', async () => {
    const l = await login(n.url, 'alice@example.com', 'alice-pw');
    const c = await connectPlainWs(n.url, l, {});
    await push(n.url, { context: 1, user: 3, event: 'ok', data: 1 });
    await post(`${n.url}/api/push`, '{broken', auth);
    await push(n.url, { context: 1, user: 3, event: 'ok', data: 2 });
    await waitFor('two events', () => c.frames.length === 2);
    assert.deepEqual(c.frames.map((f) => f.args[0]), [1, 2]);
    c.ws.close();
  });

  it('a batch (JSON array) publishes every event in order and answers their ids in order; one bad event refuses the whole batch', async () => {
    const [la, lb] = await Promise.all([login(n.url, 'alice@example.com', 'alice-pw'), login(n.url, 'bob@example.com', 'bob-pw')]);
    const a = await connectPlainWs(n.url, la, {});
    const b = await connectPlainWs(n.url, lb, {});
    try {
      // Refused whole: the second event names an unknown user, the third a bad path filter.
      const bad = await post(`${n.url}/api/push`, JSON.stringify([{ context: 1, user: 3, event: 'no', data: 0 }, { context: 1, user: 99, event: 'no' }]), auth);
      assert.equal(bad.status, 404);
      assert.equal(bad.json.error.code, 'TIDINGS_UNKNOWN_USER');
      assert.match(bad.json.error.message, /^event \[1\]: /);
      assert.equal(bad.json.error.details.index, 1);
      const badFilter = await post(`${n.url}/api/push`, JSON.stringify([{ context: 1, user: 3, event: 'no' }, { context: 1, user: 3, event: 'no' }, { context: 1, user: 3, event: 'no', pathFilter: 'x//' }]), auth);
      assert.equal(badFilter.status, 400);
      assert.equal(badFilter.json.error.details.index, 2);
      const empty = await post(`${n.url}/api/push`, '[]', auth);
      assert.equal(empty.status, 400);
      assert.equal(empty.json.error.code, 'TIDINGS_VALIDATION');
      const tooMany = await post(`${n.url}/api/push`, JSON.stringify(Array.from({ length: 1001 }, () => ({ context: 1, user: 3, event: 'x' }))), auth);
      assert.equal(tooMany.status, 413, 'this node allows 4 KB bodies, so the body limit answers first');

      const events = [
        { context: 1, user: 3, event: 'one', data: 1 },
        { context: 1, user: 4, event: 'one', data: 1 },
        { context: 1, user: 3, event: 'two', data: 2, key: 'k-batch' },
        { context: 1, user: 3, event: 'dup', data: 3, key: 'k-batch' },
        { context: 1, user: 3, event: 'three', data: 4 },
      ];
      const ok = await post(`${n.url}/api/push`, JSON.stringify(events), auth);
      assert.equal(ok.status, 202);
      assert.equal(ok.json.results.length, 5);
      assert.deepEqual(ok.json.results.map((r: { duplicate: boolean }) => r.duplicate), [false, false, false, true, false]);
      const marker = await push(n.url, { context: 1, user: 3, event: 'marker' });
      await waitFor('the marker', () => a.frames.some((f) => f.id === marker.json.id));
      await waitFor('bob\'s event', () => b.frames.length === 1);
      const ids = ok.json.results.map((r: { id: string }) => r.id);
      assert.deepEqual(a.frames.map((f) => f.name), ['one', 'two', 'three', 'marker'], 'nothing from the refused batches; the duplicate dropped; order kept');
      assert.deepEqual(a.frames.slice(0, 3).map((f) => f.id), [ids[0], ids[2], ids[4]]);
      assert.deepEqual(b.frames.map((f) => f.id), [ids[1]]);
    } finally {
      a.ws.close();
      b.ws.close();
    }
  });

  it('login: wrong types are 400, bad credentials 401', async () => {
    assert.equal((await post(`${n.url}/api/login`, JSON.stringify({ login: 5, password: 'x' }))).json.error.code, 'TIDINGS_VALIDATION');
    const bad = await post(`${n.url}/api/login`, JSON.stringify({ login: 'alice@example.com', password: 'wrong' }));
    assert.equal(bad.status, 401);
    assert.equal(bad.json.error.code, 'TIDINGS_BAD_CREDENTIALS');
  });

  it('health and metrics answer', async () => {
    assert.equal((await fetch(`${n.url}/health/live`)).status, 200);
    const ready = await fetch(`${n.url}/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
    const m = await (await fetch(`${n.url}/metrics`)).text();
    assert.match(m, /tidings_events_published_total/);
  });
});

describe('publishing is off without a token', () => {
  it('POST /api/push answers 403 TIDINGS_PUSH_DISABLED when tidings.push.token is empty', async () => {
    const n = await startNode({ properties: { 'tidings.push.token': '' } });
    try {
      const r = await post(`${n.url}/api/push`, JSON.stringify({ context: 1, user: 3, event: 'e' }), { authorization: 'Bearer ' });
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, 'TIDINGS_PUSH_DISABLED');
    } finally {
      await n.stop();
    }
  });
});

describe('sessions', () => {
  it('failed logins are limited per login with 429 and Retry-After; a correct password still works for others', async () => {
    const n = await startNode({ properties: { 'tidings.login.maxFailuresPerLogin': 3, 'tidings.login.maxFailuresPerIp': 100 } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await post(`${n.url}/api/login`, JSON.stringify({ login: 'bob@example.com', password: 'no' }))).status, 401);
      const limited = await post(`${n.url}/api/login`, JSON.stringify({ login: 'bob@example.com', password: 'bob-pw' }));
      assert.equal(limited.status, 429);
      assert.equal(limited.json.error.code, 'TIDINGS_LOGIN_RATE_LIMITED');
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
      assert.equal((await post(`${n.url}/api/login`, JSON.stringify({ login: 'alice@example.com', password: 'alice-pw' }))).status, 200);
    } finally {
      await n.stop();
    }
  });

  it('failed logins are limited per client IP across logins', async () => {
    const n = await startNode({ properties: { 'tidings.login.maxFailuresPerIp': 2, 'tidings.login.maxFailuresPerLogin': 100 } });
    try {
      assert.equal((await post(`${n.url}/api/login`, JSON.stringify({ login: 'a@x', password: 'no' }))).status, 401);
      assert.equal((await post(`${n.url}/api/login`, JSON.stringify({ login: 'b@x', password: 'no' }))).status, 401);
      assert.equal((await post(`${n.url}/api/login`, JSON.stringify({ login: 'c@x', password: 'no' }))).status, 429);
    } finally {
      await n.stop();
    }
  });

  it('the secret cookie is HttpOnly and SameSite, and Secure when configured', async () => {
    const n = await startNode({ properties: { 'tidings.session.cookieSecure': true } });
    try {
      const r = await post(`${n.url}/api/login`, JSON.stringify({ login: 'alice@example.com', password: 'alice-pw' }));
      const c = r.headers.get('set-cookie') ?? '';
      assert.match(c, /^tidings-secret=[A-Za-z0-9_-]{20,};/);
      assert.match(c, /HttpOnly/);
      assert.match(c, /SameSite=Lax/);
      assert.match(c, /Secure/);
      assert.deepEqual(Object.keys(r.json).sort(), ['context', 'expiresAt', 'login', 'session', 'user']);
    } finally {
      await n.stop();
    }
  });

  it('logout closes every socket of that session, and only of that session; the session is gone after', async () => {
    const n = await startNode();
    try {
      const s1 = await login(n.url, 'alice@example.com', 'alice-pw');
      const s2 = await login(n.url, 'alice@example.com', 'alice-pw');
      const ws1 = await connectPlainWs(n.url, s1, {});
      const sio1 = await connectSocketIo(n.url, s1, { transports: ['websocket'] });
      const ws2 = await connectPlainWs(n.url, s2, {});
      const invalid = collect(sio1, 'session:invalid');
      const wsClosed = once<[number, Buffer]>(ws1.ws, 'close');
      const sioGone = once(sio1, 'disconnect');
      const noCookie = await post(`${n.url}/api/logout?session=${s1.session}`, undefined);
      assert.equal(noCookie.status, 403);
      const r = await post(`${n.url}/api/logout?session=${s1.session}`, undefined, { cookie: s1.cookie });
      assert.equal(r.status, 200);
      const [code] = await wsClosed;
      assert.equal(code, 4401);
      await sioGone;
      assert.equal(invalid.length, 1);
      assert.equal(ws2.ws.readyState, ws2.ws.OPEN);
      const again = await connectPlainWs(n.url, s1, {}).catch((e) => e);
      assert.equal(again.status, 401);
      assert.equal(again.body.error.code, 'TIDINGS_SESSION_UNKNOWN');
      ws2.ws.close();
    } finally {
      await n.stop();
    }
  });

  it('a session expires after its lifetime without use', async () => {
    const n = await startNode({ properties: { 'tidings.session.lifetimeSeconds': 10 } });
    try {
      const l = await login(n.url, 'alice@example.com', 'alice-pw');
      const store = n.node.backends.sessions;
      const s = await store.get(l.session);
      assert.ok(s);
      assert.ok(s.expiresAt - Date.now() <= 10_000 && s.expiresAt - Date.now() > 8_000);
      // Moving the expiry into the past stands in for waiting out the lifetime.
      await store.touch(l.session, Date.now() - 1);
      const refused = await connectPlainWs(n.url, l, {}).catch((e) => e);
      assert.equal(refused.status, 401);
    } finally {
      await n.stop();
    }
  });
});
