/**
 * Issue 14 item 6: `tidings diag URL` through the real Debian nginx, Apache httpd and HAProxy, run from
 * the shipped deploy/ files (test/helpers/proxies.ts: only addresses, ports and, where asked, the idle
 * timeout substituted), round robin in front of three nodes on one redis-server. Each shipped file
 * passes every check; each proxy once more with the mistake operators make with it, which diag finds
 * and for which it prints the line the shipped file has.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster } from '../cluster/fixture.js';
import { SHIPPED, startProxy, withoutLines, type ProxyKind, type RunningProxy } from '../helpers/proxies.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const KINDS: ProxyKind[] = ['nginx', 'apache', 'haproxy'];
/** How long diag holds its idle request and WebSocket: below the shipped 75 s, above a broken 2 s. */
const IDLE_S = 4;

function diag(url: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${ROOT}bin/tidings.js`, 'diag', url, '--idle', String(IDLE_S), '--gap', '1000'], { timeout: 60_000 }, (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }));
  });
}

/** The FAIL lines, each with the fix printed for `kind` below it. */
function failures(stdout: string, kind: ProxyKind): { what: string; fix: string }[] {
  const label = { nginx: 'nginx:', apache: 'Apache:', haproxy: 'HAProxy:' }[kind];
  const lines = stdout.split('\n');
  return lines.flatMap((l, i) => (l.startsWith('FAIL') ? [{ what: l.slice(6), fix: lines.slice(i + 1, i + 4).find((f) => f.trim().startsWith(label))!.trim().slice(label.length).trim() }] : []));
}

/** The deliberately broken variant of each shipped file. */
const BROKEN: Record<ProxyKind, { idleTimeoutSeconds?: number; edit: (t: string) => string }> = {
  // A hurried copy: nginx's default HTTP/1.0 to the nodes (no upgrade; and where buffering is on, as in
  // `location /`, a streamed answer is held back: over HTTP/1.1 nginx 1.22 passes each chunk on even
  // then, measured), no upgrade headers, no Host and X-Forwarded-For lines, a read timeout below the idle wait.
  nginx: {
    idleTimeoutSeconds: 2,
    edit: withoutLines('proxy_http_version 1.1', 'proxy_set_header Upgrade', 'proxy_set_header Connection', 'proxy_set_header Host', 'proxy_set_header X-Forwarded-For'),
  },
  // Plain BalancerMember lines (the upgrade is dropped) and no ProxyPreserveHost.
  apache: {
    edit: (t) => withoutLines('ProxyPreserveHost On')(t.replaceAll(' upgrade=websocket', '')),
  },
  // No option forwardfor, and timeouts below the idle wait.
  haproxy: { idleTimeoutSeconds: 2, edit: withoutLines('option forwardfor') },
};

describe('tidings diag through the shipped proxy configs, in front of three nodes', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  const good = new Map<ProxyKind, RunningProxy>();
  const broken = new Map<ProxyKind, RunningProxy>();

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, { 'tidings.http.trustedProxies': '127.0.0.1' }, 'dg');
    const upstreams = cluster.urls.map((u) => new URL(u).host);
    for (const kind of KINDS) {
      good.set(kind, await startProxy(kind, { upstreams }));
      broken.set(kind, await startProxy(kind, { upstreams, ...BROKEN[kind] }));
    }
  });
  after(async () => {
    for (const p of [...good.values(), ...broken.values()]) await p.stop();
    await cluster?.stop();
    await redis?.stop();
  });

  for (const kind of KINDS) {
    it(`${kind}: the shipped file passes every check`, async () => {
      const url = good.get(kind)!.url;
      const r = await diag(url);
      assert.equal(r.code, 0, r.stdout);
      assert.doesNotMatch(r.stdout, /FAIL/);
      assert.match(r.stdout, new RegExp(`^ok {4}reached tidings node (${cluster!.ids.join('|')})$`, 'm'));
      for (const line of [
        `ok    Host ${new URL(url).host} arrives`,
        'ok    client IP 127.0.0.1 taken from X-Forwarded-For',
        'ok    WebSocket upgrade on /websockets/ passes; frames flow both ways',
        `ok    an idle request outlives ${IDLE_S} s`,
        `ok    an idle WebSocket outlives ${IDLE_S} s`,
        'no problems found',
      ]) assert.ok(r.stdout.includes(line), `missing "${line}" in:\n${r.stdout}`);
      assert.match(r.stdout, /^ok {4}\/socket\.io\/ reaches tidings \(401 TIDINGS_SESSION_MISSING without a session, as it should\)$/m);
      assert.match(r.stdout, /^ok {4}Server-Sent Events are not buffered/m);
      assert.match(r.stdout, /^ok {4}streamed responses are not buffered/m);
    });
  }

  it('nginx without proxy_http_version 1.1, the upgrade headers, Host and X-Forwarded-For lines, and with a short read timeout: each found, each with the shipped line', async () => {
    const r = await diag(broken.get('nginx')!.url);
    assert.equal(r.code, 1, r.stdout);
    const f = failures(r.stdout, 'nginx');
    const shipped = readFileSync(`${ROOT}${SHIPPED.nginx}`, 'utf8');
    const expect: [RegExp, string][] = [
      [/^the Host that arrives \(tidings\) is not the one asked for/, 'proxy_set_header Host $http_host;'],
      [/^the proxy does not send X-Forwarded-For/, 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;'],
      [/^WebSocket upgrade on \/websockets\/ did not pass: HTTP \d+ came back instead of 101/, 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;'],
      [/^Server-Sent Events are buffered/, 'proxy_buffering off;'],
      [/^streamed responses are buffered/, 'proxy_buffering off;'],
      [/^an idle request was cut after \d+ s with HTTP 504/, 'proxy_read_timeout 75s;'],
    ];
    assert.equal(f.length, expect.length, r.stdout);
    expect.forEach(([what, line], i) => {
      assert.match(f[i].what, what, r.stdout);
      assert.ok(f[i].fix.includes(line), `the fix for "${f[i].what}" does not name ${line}: ${f[i].fix}`);
      for (const directive of line.split(/(?<=;) /)) assert.ok(shipped.includes(directive), `${SHIPPED.nginx} has no ${directive}`);
    });
    assert.match(r.stdout, /6 problems found\n$/);
  });

  it('Apache with plain BalancerMember lines and no ProxyPreserveHost: the Host and the upgrade fail, each with the shipped line', async () => {
    const r = await diag(broken.get('apache')!.url);
    assert.equal(r.code, 1, r.stdout);
    const f = failures(r.stdout, 'apache');
    assert.equal(f.length, 2, r.stdout);
    assert.match(f[0].what, /^the Host that arrives \(127\.0\.0\.1:\d+\) is not the one asked for \(127\.0\.0\.1:\d+\)/);
    assert.match(f[0].fix, /ProxyPreserveHost On/);
    assert.match(f[1].what, /^WebSocket upgrade on \/websockets\/ did not pass/);
    assert.match(f[1].fix, /upgrade=websocket/);
    const shipped = readFileSync(`${ROOT}${SHIPPED.apache}`, 'utf8');
    assert.ok(shipped.includes('ProxyPreserveHost On') && shipped.includes('upgrade=websocket'));
  });

  it('HAProxy without option forwardfor and with short timeouts: the client IP and both idle checks fail, each with the shipped line', async () => {
    const r = await diag(broken.get('haproxy')!.url);
    assert.equal(r.code, 1, r.stdout);
    const f = failures(r.stdout, 'haproxy');
    assert.equal(f.length, 3, r.stdout);
    assert.match(f[0].what, /^the proxy does not send X-Forwarded-For/);
    assert.match(f[0].fix, /option forwardfor/);
    assert.match(f[1].what, /^an idle request was cut after \d+ s with HTTP 504/);
    assert.match(f[2].what, /^an idle WebSocket was cut/);
    for (const x of [f[1], f[2]]) assert.match(x.fix, /timeout server 75s, timeout client 75s, timeout tunnel 75s/);
    const shipped = readFileSync(`${ROOT}${SHIPPED.haproxy}`, 'utf8');
    for (const line of ['option forwardfor', 'timeout server 75s', 'timeout client 75s', 'timeout tunnel 75s']) assert.ok(shipped.includes(line), `${SHIPPED.haproxy} has no ${line}`);
    assert.match(r.stdout, /^ok {4}WebSocket upgrade on \/websockets\/ passes/m);
  });
});
