/** Issue 9 item 6, the parts without a network: allowances, bounds, device cookies, the dummy hash. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CredentialCheck } from '../../src/auth/credential-check.js';
import { DeviceCookies } from '../../src/auth/device-cookies.js';
import { ipKey, LoginLimiter, type LoginLimits } from '../../src/auth/login-limiter.js';
import { costOf, hashPassword, hashWithCost } from '../../src/auth/passwords.js';
import type { Directory, DirUser } from '../../src/directory/directory.js';

const LIMITS: LoginLimits = { perIp: 10, perIpLogin: 3, perLogin: 5, windowMs: 300_000, maxTracked: 1000 };

describe('LoginLimiter', () => {
  it('an allowance is used up at once and refills evenly over the window', () => {
    let now = 1_000_000;
    const l = new LoginLimiter(() => now);
    const a = { ip: '10.0.0.1', login: 'Alice@example.com', device: null };
    for (let i = 0; i < 3; i++) {
      assert.equal(l.retryAfter(a, LIMITS), 0);
      l.recordFailure(a, LIMITS);
    }
    assert.equal(l.retryAfter(a, LIMITS), 100, 'one more every 300 s / 3');
    assert.equal(l.retryAfter({ ...a, login: 'alice@EXAMPLE.com' }, LIMITS), 100, 'logins compare case-insensitively');
    now += 100_000;
    assert.equal(l.retryAfter(a, LIMITS), 0);
    l.recordFailure(a, LIMITS);
    assert.equal(l.retryAfter(a, LIMITS), 100);
    l.recordSuccess(a);
    assert.equal(l.retryAfter(a, LIMITS), 0, 'a success forgets the pair');
  });

  it('a trusted device counts only its own failures', () => {
    const l = new LoginLimiter(() => 0);
    for (let i = 0; i < 10; i++) l.recordFailure({ ip: '10.0.0.9', login: `u${i}`, device: null }, LIMITS);
    const untrusted = { ip: '10.0.0.9', login: 'alice', device: null };
    assert.ok(l.failureRetryAfter(untrusted, LIMITS) > 0, 'the IP is used up');
    const trusted = { ...untrusted, device: 'dev1' };
    assert.equal(l.retryAfter(trusted, LIMITS), 0);
    assert.equal(l.failureRetryAfter(trusted, LIMITS), 0);
    for (let i = 0; i < 5; i++) l.recordFailure(trusted, LIMITS);
    assert.ok(l.retryAfter(trusted, LIMITS) > 0);
    assert.equal(l.retryAfter({ ...trusted, device: 'dev2' }, LIMITS), 0);
  });

  it("an IP's allowance never holds back a password check, only the answer to a wrong one", () => {
    let now = 0;
    const l = new LoginLimiter(() => now);
    for (let i = 0; i < 10; i++) l.recordFailure({ ip: '10.0.0.7', login: `u${i}`, device: null }, LIMITS);
    const next = { ip: '10.0.0.7', login: 'alice', device: null };
    assert.equal(l.retryAfter(next, LIMITS), 0, 'a correct password from this IP still gets in');
    assert.equal(l.failureRetryAfter(next, LIMITS), 30, 'a wrong one is 429: one more every 300 s / 10');
    assert.equal(l.failureRetryAfter({ ...next, ip: '10.0.0.8' }, LIMITS), 0, 'only that IP');
    now += 30_000;
    assert.equal(l.failureRetryAfter(next, LIMITS), 0);
  });

  it('remembers at most maxTracked counters, forgetting the least recently failed', () => {
    const l = new LoginLimiter(() => 0);
    const limits = { ...LIMITS, maxTracked: 100 };
    const keep = { ip: '10.9.9.9', login: 'keep', device: null };
    for (let i = 0; i < 5000; i++) {
      l.recordFailure({ ip: `10.1.${i >> 8}.${i & 255}`, login: `u${i}`, device: null }, limits);
      if (i % 10 === 0) l.recordFailure({ ...keep, device: 'd' }, limits);
      assert.ok(l.tracked <= 100);
    }
    assert.ok(l.retryAfter({ ...keep, device: 'd' }, limits) > 0, 'a key that keeps failing stays');
  });

  it('IPv6 clients are counted per /64, IPv4-mapped ones as IPv4', () => {
    assert.equal(ipKey('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
    assert.equal(ipKey('2001:0db8:0000:0001:ffff:ffff:ffff:ffff'), '2001:db8:0:1::/64');
    assert.equal(ipKey('::1'), '0:0:0:0::/64');
    assert.equal(ipKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(ipKey('192.0.2.7'), '192.0.2.7');
  });
});

describe('DeviceCookies', () => {
  it('vouches for its login only, until it expires, and only when signed with the key in force', () => {
    let now = 0;
    let key = 'k1-0123456789abcdef';
    const d = new DeviceCookies(() => key, () => now);
    const c = d.issue('Alice@example.com', 60);
    const header = `other=1; ${c.name}=${c.value}`;
    assert.ok(d.deviceOf('alice@example.com', header));
    assert.equal(d.deviceOf('bob@example.com', `${d.nameFor('bob@example.com')}=${c.value}`), null);
    const [id, exp] = c.value.split('.');
    const later = (Number.parseInt(exp, 36) + 3_600_000).toString(36);
    assert.equal(d.deviceOf('alice@example.com', `${c.name}=${id}.${later}.${c.value.split('.')[2]}`), null, 'the expiry is signed');
    now = 61_000;
    assert.equal(d.deviceOf('alice@example.com', header), null, 'expired');
    now = 0;
    key = 'k2-0123456789abcdef';
    assert.equal(d.deviceOf('alice@example.com', `${d.nameFor('alice@example.com')}=${c.value}`), null, 'another key');
  });
});

describe('CredentialCheck', () => {
  const user = (id: number, login: string, password: string): DirUser => ({ id, contextId: 1, key: `${id}@1`, login, password, mailEnabled: true, config: new Map() });
  const dir = (users: DirUser[]): Directory => ({ contexts: new Map(), users: new Map(users.map((u) => [u.key, u])), byLogin: new Map(users.map((u) => [u.login, u])) });

  it('verifies an unknown login against a dummy of the scheme and cost of the directory\'s hashes', async () => {
    const argon = await hashWithCost('pw', 'ARGON2ID m=4096,t=3,p=1');
    const scrypt = await hashPassword('pw', 'SCRYPT');
    for (const [real, others] of [[argon, [argon, argon, scrypt]], [scrypt, [scrypt, scrypt, argon, '{PLAIN}x']]] as const) {
      const verified: string[] = [];
      const check = new CredentialCheck(async (_pw, stored) => (verified.push(stored), false));
      const d = dir(others.map((h, i) => user(i + 1, `u${i}@example.com`, h)));
      assert.equal(await check.check(d, 'nobody@example.com', 'pw'), null);
      assert.equal(await check.check(d, 'u0@example.com', 'wrong'), null);
      assert.equal(verified.length, 2, 'the unknown login is verified too');
      assert.equal(costOf(verified[0]), costOf(real), 'the dummy has the cost most users have');
      assert.notEqual(verified[0], real, 'the dummy is not a user\'s hash');
      assert.equal(verified[1], real);
    }
  });

  it('a known login with the right password is found; the dummy never matches', async () => {
    const check = new CredentialCheck();
    const d = dir([user(3, 'alice@example.com', await hashWithCost('alice-pw', 'ARGON2ID m=4096,t=2,p=1'))]);
    assert.equal((await check.check(d, 'ALICE@example.com', 'alice-pw'))?.id, 3);
    assert.equal(await check.check(d, 'alice@example.com', 'nope'), null);
    assert.equal(await check.check(d, 'mallory@example.com', ''), null);
  });
});
