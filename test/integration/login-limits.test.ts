/**
 * Issue 9 item 6: failed logins are limited per IP, per (IP, login) and per login without handing out
 * lockouts: a browser that logged in as a login before (device cookie) is exempt from that login's
 * lockout, whatever an attacker does from elsewhere. Clients come from different loopback addresses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startNode, type TestNode } from '../helpers/node.js';

interface Answer {
  status: number;
  json: any;
  retryAfter: string | undefined;
  cookies: string[];
}

/** POST /api/login from `from` (a loopback address), with the cookies given. */
function loginFrom(url: string, from: string, login: string, password: string, cookies: string[] = []): Promise<Answer> {
  const body = JSON.stringify({ login, password });
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/login`, { method: 'POST', localAddress: from, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(cookies.length ? { cookie: cookies.join('; ') } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text), retryAfter: res.headers['retry-after'], cookies: (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const deviceCookie = (a: Answer) => {
  const c = a.cookies.find((x) => x.startsWith('tidings-device-'));
  assert.ok(c, `a device cookie in ${JSON.stringify(a.cookies)}`);
  return c;
};

const USER = '127.0.0.1';
const ATTACKER = '127.0.0.2';
const ELSEWHERE = '127.0.0.3';

describe('login limits', () => {
  let n: TestNode;
  before(async () => {
    n = await startNode({ properties: { 'tidings.login.maxFailuresPerIp': 20, 'tidings.login.maxFailuresPerIpLogin': 3, 'tidings.login.maxFailuresPerLogin': 6 } });
  });
  after(() => n.stop());

  it('a correct login from an IP that failed many times succeeds, with or without a device cookie; its wrong guesses get 429', async () => {
    const first = await loginFrom(n.url, ELSEWHERE, 'carol@other.org', 'carol-pw');
    assert.equal(first.status, 200);
    const device = deviceCookie(first);
    let limited = 0;
    for (let i = 0; i < 60; i++) {
      const r = await loginFrom(n.url, ELSEWHERE, `nobody${i}@example.com`, 'guess');
      if (r.status === 429) limited++;
      else assert.equal(r.status, 401);
    }
    assert.equal(limited, 40, 'the IP is limited after its 20 failures');
    // Another user behind the same address, in a browser that never logged in: not slowed.
    const stranger = await loginFrom(n.url, ELSEWHERE, 'bob@example.com', 'bob-pw');
    assert.equal(stranger.status, 200, JSON.stringify(stranger.json));
    const again = await loginFrom(n.url, ELSEWHERE, 'carol@other.org', 'carol-pw', [device]);
    assert.equal(again.status, 200, JSON.stringify(again.json));
    // A wrong password from that IP is a 429 whether the login exists or not, with Retry-After.
    for (const who of ['carol@other.org', 'nobody-else@example.com']) {
      const wrong = await loginFrom(n.url, ELSEWHERE, who, 'guess');
      assert.deepEqual([wrong.status, wrong.json.error.code], [429, 'TIDINGS_LOGIN_RATE_LIMITED'], who);
      assert.ok(Number(wrong.retryAfter) > 0);
    }
    // The IP's lockout is that IP's: the same login from another IP is not slowed.
    assert.equal((await loginFrom(n.url, USER, 'carol@other.org', 'carol-pw')).status, 200);
  });

  it('an attacker on another IP cannot lock out a user who has a device cookie', async () => {
    const mine = await loginFrom(n.url, USER, 'alice@example.com', 'alice-pw');
    assert.equal(mine.status, 200);
    const device = deviceCookie(mine);
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) codes.push((await loginFrom(n.url, ATTACKER, 'alice@example.com', `guess${i}`)).status);
    assert.deepEqual(codes, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429, 429, 429], 'the attacker is limited per (IP, login)');
    // Guessing from many IPs uses up the login's allowance: untrusted devices are locked out…
    for (let i = 0; i < 4; i++) await loginFrom(n.url, `127.0.1.${i + 1}`, 'alice@example.com', 'guess');
    const untrusted = await loginFrom(n.url, USER, 'alice@example.com', 'alice-pw');
    assert.equal(untrusted.status, 429);
    assert.equal(untrusted.json.error.code, 'TIDINGS_LOGIN_RATE_LIMITED');
    assert.ok(Number(untrusted.retryAfter) > 0);
    // …but the browser that logged in before is not, from its usual IP or any other.
    assert.equal((await loginFrom(n.url, USER, 'alice@example.com', 'alice-pw', [device])).status, 200);
    assert.equal((await loginFrom(n.url, ATTACKER, 'alice@example.com', 'alice-pw', [device])).status, 200);
  });

  it('failures per (IP, login) are limited, with Retry-After, and only for that pair', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await loginFrom(n.url, '127.0.2.1', 'bob@example.com', 'no')).status, 401);
    const r = await loginFrom(n.url, '127.0.2.1', 'bob@example.com', 'bob-pw');
    assert.equal(r.status, 429);
    assert.ok(Number(r.retryAfter) > 0 && Number(r.retryAfter) <= 300);
    assert.equal((await loginFrom(n.url, '127.0.2.2', 'bob@example.com', 'bob-pw')).status, 200, 'the same login from another IP');
    assert.equal((await loginFrom(n.url, '127.0.2.1', 'dave@example.com', 'nope')).status, 401, 'another login from the same IP');
  });

  it('a device cookie only vouches for its own login, only when intact, and its own failures are limited', async () => {
    const mine = await loginFrom(n.url, '127.0.3.1', 'bob@example.com', 'bob-pw');
    const device = deviceCookie(mine);
    const [name, value] = device.split('=');
    const tampered = `${name}=${value.slice(0, -2)}${value.endsWith('AA') ? 'BB' : 'AA'}`;
    // Lock bob out for untrusted devices: from several IPs (the pair limit is 3, the login's 6).
    for (let i = 0; i < 6; i++) await loginFrom(n.url, `127.0.4.${i + 1}`, 'bob@example.com', 'guess');
    assert.equal((await loginFrom(n.url, '127.0.3.1', 'bob@example.com', 'bob-pw', [tampered])).status, 429, 'a tampered cookie is untrusted');
    assert.equal((await loginFrom(n.url, '127.0.3.1', 'bob@example.com', 'bob-pw', [device])).status, 200);
    // The trusted device's own failures: 6 allowed, then 429 even with the cookie.
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await loginFrom(n.url, '127.0.3.1', 'bob@example.com', 'typo', [device])).status);
    assert.deepEqual(codes, [401, 401, 401, 401, 401, 401, 429]);
  });
});
