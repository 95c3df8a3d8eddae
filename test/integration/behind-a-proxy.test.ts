import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfig } from '../../src/config/load-config.js';
import { makeConfigDir } from '../helpers/config-dir.js';
import { captureLog, connectPlainWs, login, push, startNode, tryUpgrade, type Login, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

/** POST /api/login with extra headers (a forwarded address); resolves with the login or the refusal. */
async function loginWith(url: string, who: { login: string; password: string }, headers: Record<string, string>): Promise<{ status: number; login?: Login; body: any }> {
  const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(who) });
  const body = (await res.json()) as any;
  if (res.status !== 200) return { status: res.status, body };
  return { status: 200, body, login: { session: body.session, cookie: (res.headers.get('set-cookie') ?? '').split(';')[0], user: body.user, context: body.context } };
}

/** A plain WebSocket upgrade with extra headers: 'open' or the refusal's status and error code. */
async function upgrade(url: string, l: Login, headers: Record<string, string>): Promise<'open' | { status: number; code: string; message: string }> {
  const r = await tryUpgrade(url, l, { headers, path: 'p' });
  return r === 'open' ? r : { status: r.status, code: r.body.error.code, message: r.body.error.message };
}

const alice = { login: 'alice@example.com', password: 'alice-pw' };

describe('client IP: X-Forwarded-For only from tidings.http.trustedProxies', () => {
  it('a forged X-Forwarded-For from a peer that is not a trusted proxy is ignored, at login and at the gate', async () => {
    // the test connects from 127.0.0.1, which is not in the list
    const n = await startNode({ properties: { 'tidings.session.ipCheck': true, 'tidings.http.trustedProxies': '10.0.0.0/8,2001:db8::/32' } });
    try {
      const victim = await loginWith(n.url, alice, { 'x-forwarded-for': '198.51.100.7' });
      assert.equal(victim.status, 200);
      // the session was bound to the real peer, so a socket from that peer passes whatever it claims
      assert.equal(await upgrade(n.url, victim.login!, {}), 'open');
      assert.equal(await upgrade(n.url, victim.login!, { 'x-forwarded-for': '203.0.113.1' }), 'open');
    } finally {
      await n.stop();
    }
  });

  it('through a trusted proxy the rightmost untrusted address is the client; ipCheck refuses a forged victim IP', async () => {
    const n = await startNode({ properties: { 'tidings.session.ipCheck': true, 'tidings.http.trustedProxies': '127.0.0.1' } });
    try {
      // the victim logs in from 198.51.100.7 through the proxy (127.0.0.1), which appended that address
      const victim = await loginWith(n.url, alice, { 'x-forwarded-for': '198.51.100.7' });
      assert.equal(await upgrade(n.url, victim.login!, { 'x-forwarded-for': '198.51.100.7' }), 'open');
      // the attacker (203.0.113.66) has stolen the session and cookie and claims the victim's address:
      // the proxy appends the real one, and that is the one tidings compares
      const forged = await upgrade(n.url, victim.login!, { 'x-forwarded-for': '198.51.100.7, 203.0.113.66' });
      assert.deepEqual(forged, { status: 403, code: 'TIDINGS_IP_MISMATCH', message: 'The client IP does not match the session' });
    } finally {
      await n.stop();
    }
  });

  it('the failed-login limit counts the real client behind the proxy, not the forgeable leftmost entry', async () => {
    const n = await startNode({ properties: { 'tidings.http.trustedProxies': '127.0.0.1', 'tidings.login.maxFailuresPerIp': 2, 'tidings.login.maxFailuresPerLogin': 100 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await loginWith(n.url, { login: 'nobody@example.com', password: 'x' }, { 'x-forwarded-for': `192.0.2.${i + 1}, 203.0.113.66` });
        statuses.push(r.status);
      }
      assert.deepEqual(statuses, [401, 401, 429, 429]);
      // another client behind the same proxy is not limited
      assert.equal((await loginWith(n.url, alice, { 'x-forwarded-for': '203.0.113.77' })).status, 200);
    } finally {
      await n.stop();
    }
  });

  it('the logs name the real client behind the proxy: a failed login, and one refused for too many failures', async () => {
    const { log, lines } = captureLog('info');
    const n = await startNode({ log, properties: { 'tidings.http.trustedProxies': '127.0.0.1', 'tidings.login.maxFailuresPerIpLogin': 1 } });
    try {
      const forged = { 'x-forwarded-for': '192.0.2.9, 203.0.113.66' };
      assert.equal((await loginWith(n.url, { login: alice.login, password: 'wrong' }, forged)).status, 401);
      assert.equal((await loginWith(n.url, { login: alice.login, password: 'wrong' }, forged)).status, 429);
      const failed = lines.find((l) => l.msg === 'login failed');
      assert.equal(failed?.ip, '203.0.113.66');
      assert.equal(failed?.login, alice.login);
      assert.equal(lines.find((l) => l.msg === 'login refused: too many failed logins')?.ip, '203.0.113.66');
      // never the password
      assert.ok(!lines.some((l) => JSON.stringify(l).includes('wrong')));
    } finally {
      await n.stop();
    }
  });

  it('a bad entry in tidings.http.trustedProxies is a config error naming file, line and key', () => {
    const d = makeConfigDir({ properties: { 'tidings.http.trustedProxies': '10.0.0.1, nginx' } });
    try {
      assert.throws(() => loadConfig(d.dir, {}), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.file, 'tidings.properties');
        assert.equal(e.key, 'tidings.http.trustedProxies');
        assert.equal(typeof e.line, 'number');
        assert.match(e.reason, /'nginx' is not an IPv4\/IPv6 address or CIDR/);
        return true;
      });
    } finally {
      d.remove();
    }
  });
});

describe('Origin behind a proxy', () => {
  let n: TestNode;
  let l: Login;
  before(async () => {
    n = await startNode({ properties: { 'tidings.http.publicUrl': 'https://mail.example.com', 'tidings.http.allowedOrigins': 'https://partner.example.net', 'tidings.http.trustedProxies': '127.0.0.1' } });
    l = await login(n.url, alice.login, alice.password);
  });
  after(() => n.stop());

  it('a configured public URL is the server\'s own origin even when the proxy rewrote Host', async () => {
    assert.equal(await upgrade(n.url, l, { origin: 'https://mail.example.com', host: 'backend-1:8009' }), 'open');
  });

  it('a trusted proxy\'s X-Forwarded-Host counts as the server\'s own host (Apache without ProxyPreserveHost)', async () => {
    assert.equal(await upgrade(n.url, l, { origin: 'https://webmail.example.org', host: 'backend-1:8009', 'x-forwarded-host': 'webmail.example.org' }), 'open');
  });

  it('a refusal says what the Origin was compared with', async () => {
    const r = await upgrade(n.url, l, { origin: 'https://evil.example', host: 'backend-1:8009' });
    assert.equal(typeof r, 'object');
    const { status, code, message } = r as { status: number; code: string; message: string };
    assert.equal(status, 403);
    assert.equal(code, 'TIDINGS_ORIGIN_FORBIDDEN');
    assert.match(message, /Origin 'https:\/\/evil\.example' is not allowed/);
    assert.match(message, /https:\/\/backend-1:8009/);
    assert.match(message, /https:\/\/mail\.example\.com/);
    assert.match(message, /tidings\.http\.allowedOrigins is https:\/\/partner\.example\.net/);
  });

  it('a bad public URL is a config error', () => {
    const d = makeConfigDir({ properties: { 'tidings.http.publicUrl': 'https://mail.example.com/webmail' } });
    try {
      assert.throws(() => loadConfig(d.dir, {}), /tidings\.http\.publicUrl: .*must be an origin only/);
    } finally {
      d.remove();
    }
  });
});

describe('X-Forwarded-Host from an untrusted peer', () => {
  it('is not believed', async () => {
    const n = await startNode({});
    try {
      const l = await login(n.url, alice.login, alice.password);
      const r = await upgrade(n.url, l, { origin: 'https://webmail.example.org', host: 'backend-1:8009', 'x-forwarded-host': 'webmail.example.org' });
      assert.equal(typeof r === 'object' && r.code, 'TIDINGS_ORIGIN_FORBIDDEN');
    } finally {
      await n.stop();
    }
  });
});

describe('plain WebSocket keepalive (tidings.websocket.pingIntervalMs)', () => {
  let n: TestNode;
  let l: Login;
  before(async () => {
    n = await startNode({ properties: { 'tidings.websocket.pingIntervalMs': 200 } });
    l = await login(n.url, alice.login, alice.password);
  });
  after(() => n.stop());

  it('pings an idle socket every interval, and a client that answers stays connected', async () => {
    const c = await connectPlainWs(n.url, l, { path: '/keepalive' });
    const pings: number[] = [];
    c.ws.on('ping', () => pings.push(Date.now()));
    let closed = false;
    c.ws.once('close', () => (closed = true));
    try {
      await waitFor('five pings', () => pings.length >= 5, 5000);
      assert.equal(closed, false);
      const p = await push(n.url, { context: 1, user: 3, event: 'after-idle', data: 1 });
      await waitFor('the event after the idle time', () => c.frames.some((f) => f.id === p.json.id), 5000);
    } finally {
      c.ws.close();
    }
  });

  it('closes a peer that does not answer a ping', async () => {
    // A raw TCP client: completes the upgrade, then never reads or answers anything.
    const sock = netConnect({ host: '127.0.0.1', port: Number(new URL(n.url).port) });
    let head = '';
    let ended = false;
    sock.on('data', (d) => (head += d.toString('latin1')));
    sock.on('close', () => (ended = true));
    sock.on('error', () => undefined);
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(`GET /websockets/dead?session=${l.session} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nCookie: ${l.cookie}\r\n\r\n`);
    try {
      await waitFor('the 101 answer', () => head.startsWith('HTTP/1.1 101'), 5000);
      await waitFor('the server to close the silent peer', () => ended, 5000);
    } finally {
      sock.destroy();
    }
  });
});
