/**
 * Issue 14 item 6, beyond nginx: `tidings diag URL` through a real HAProxy and a real Apache httpd,
 * each once configured right and once with the mistake operators make with it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startNode, type TestNode } from '../helpers/node.js';
import { APACHE_BIN, APACHE_MODULES, HAPROXY_BIN, startApache, startHaproxy, type ProxyServer } from '../helpers/proxy-servers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function diag(url: string, idle: number): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${ROOT}bin/tidings.js`, 'diag', url, '--idle', String(idle), '--gap', '1000'], { timeout: 60_000 }, (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }));
  });
}

function haproxyConf(upstreamPort: number, o: { serverTimeout: string; forwardfor: boolean }): string {
  return `global
  pidfile @DIR@/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server ${o.serverTimeout}
  timeout tunnel ${o.serverTimeout}
frontend fe
  bind 127.0.0.1:@PORT@
${o.forwardfor ? '  option forwardfor\n' : ''}  default_backend tidings
backend tidings
  server n1 127.0.0.1:${upstreamPort}
`;
}

const APACHE_BASE = `ServerRoot "@DIR@"
PidFile @DIR@/httpd.pid
ErrorLog @DIR@/error.log
LogLevel warn
Mutex file:@DIR@
DefaultRuntimeDir @DIR@
ServerName 127.0.0.1
Listen 127.0.0.1:@PORT@
LoadModule mpm_event_module ${APACHE_MODULES}/mod_mpm_event.so
LoadModule authz_core_module ${APACHE_MODULES}/mod_authz_core.so
LoadModule proxy_module ${APACHE_MODULES}/mod_proxy.so
LoadModule proxy_http_module ${APACHE_MODULES}/mod_proxy_http.so
LoadModule headers_module ${APACHE_MODULES}/mod_headers.so
`;

describe('tidings diag through HAProxy', { skip: !existsSync(HAPROXY_BIN) && `${HAPROXY_BIN} is not installed` }, () => {
  let node: TestNode;
  let good: ProxyServer;
  let short: ProxyServer;
  before(async () => {
    node = await startNode({ properties: { 'tidings.http.trustedProxies': '127.0.0.1' } });
    const port = Number(new URL(node.url).port);
    good = await startHaproxy(haproxyConf(port, { serverTimeout: '10s', forwardfor: true }));
    short = await startHaproxy(haproxyConf(port, { serverTimeout: '2s', forwardfor: false }));
  });
  after(async () => {
    await good?.stop();
    await short?.stop();
    await node?.stop();
  });

  it('a correct config passes every check', async () => {
    const r = await diag(good.url, 4);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /ok {4}client IP 127\.0\.0\.1 taken from X-Forwarded-For/);
    assert.match(r.stdout, /ok {4}an idle WebSocket outlives 4 s/);
  });

  it('timeout server and timeout tunnel below the idle wait: both idle checks fail with the HAProxy fix', async () => {
    const r = await diag(short.url, 4);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /FAIL {2}an idle request was cut after \d+ s with HTTP 504/);
    assert.match(r.stdout, /FAIL {2}an idle WebSocket was cut/);
    assert.match(r.stdout, /HAProxy: timeout server 75s, timeout client 75s, and timeout tunnel 1h for WebSockets/);
    // HAProxy keeps the Host and says nothing of itself without option forwardfor: diag cannot see it.
    assert.match(r.stdout, /note {2}no X-Forwarded-For, Forwarded or Via arrived/);
  });
});

describe('tidings diag through Apache httpd', { skip: !existsSync(APACHE_BIN) && `${APACHE_BIN} is not installed` }, () => {
  let node: TestNode;
  let good: ProxyServer;
  let plain: ProxyServer;
  before(async () => {
    node = await startNode({ properties: { 'tidings.http.trustedProxies': '127.0.0.1' } });
    good = await startApache(`${APACHE_BASE}ProxyPreserveHost On
ProxyTimeout 10
ProxyPass / ${node.url}/ upgrade=websocket flushpackets=on
`);
    // The first config most people write: no upgrade, the default 60 s timeout, Host rewritten.
    plain = await startApache(`${APACHE_BASE}ProxyPass / ${node.url}/
`);
  });
  after(async () => {
    await good?.stop();
    await plain?.stop();
    await node?.stop();
  });

  it('a correct config passes every check', async () => {
    const r = await diag(good.url, 4);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /ok {4}WebSocket upgrade on \/websockets\/ passes/);
  });

  it('a plain ProxyPass fails the Host and upgrade checks with the Apache fix', async () => {
    const r = await diag(plain.url, 2);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /FAIL {2}the Host that arrives/);
    assert.match(r.stdout, /Apache: {2}ProxyPreserveHost On/);
    assert.match(r.stdout, /FAIL {2}WebSocket upgrade on \/websockets\/ did not pass/);
    assert.match(r.stdout, /Apache: {2}ProxyPass \/ http:\/\/tidings-nodes\/ upgrade=websocket/);
  });
});
