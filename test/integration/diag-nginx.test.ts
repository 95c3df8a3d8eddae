/**
 * Issue 14 item 6: `tidings diag URL` through a real nginx in front of a real node, once configured
 * right and once broken (no Upgrade headers, buffering on, a short read timeout, the Host rewritten,
 * no X-Forwarded-For): every breakage is found and the fix for nginx is printed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startNode, type TestNode } from '../helpers/node.js';
import { NGINX_BIN, NGINX_HTTP_PATHS, NGINX_MAIN, startNginx, type NginxServer } from '../helpers/nginx-server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function nginxConf(upstream: string, location: string): string {
  return `${NGINX_MAIN}
http {
  ${NGINX_HTTP_PATHS}
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:@PORT@;
    location / {
      proxy_pass ${upstream};
${location}
    }
  }
}
`;
}

const GOOD = `      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering off;
      proxy_read_timeout 10s;`;

// What a hurried first config looks like: nginx's defaults (HTTP/1.0, Host = the upstream, buffering on).
const BROKEN = `      proxy_read_timeout 2s;`;

function diag(url: string, idle: number): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${ROOT}bin/tidings.js`, 'diag', url, '--idle', String(idle), '--gap', '1000'], { timeout: 60_000 }, (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }));
  });
}

describe('tidings diag through nginx', { skip: !existsSync(NGINX_BIN) && `${NGINX_BIN} is not installed` }, () => {
  let node: TestNode;
  let good: NginxServer;
  let broken: NginxServer;
  let impatient: NginxServer;
  before(async () => {
    node = await startNode({ properties: { 'tidings.http.trustedProxies': '127.0.0.1' } });
    good = await startNginx(nginxConf(node.url, GOOD));
    broken = await startNginx(nginxConf(node.url, BROKEN));
    impatient = await startNginx(nginxConf(node.url, GOOD.replace('proxy_read_timeout 10s;', 'proxy_read_timeout 2s;')).replace('    location / {', '    location /socket.io/ { return 404; }\n    location / {'));
  });
  after(async () => {
    await good?.stop();
    await broken?.stop();
    await impatient?.stop();
    await node?.stop();
  });

  it('a correct config passes every check', async () => {
    const r = await diag(good.url, 4);
    assert.equal(r.code, 0, r.stdout);
    assert.doesNotMatch(r.stdout, /FAIL/);
    for (const line of [
      `ok    reached tidings node ${node.node.nodeId}`,
      `ok    Host 127.0.0.1:${good.port} arrives`,
      'ok    client IP 127.0.0.1 taken from X-Forwarded-For',
      'ok    WebSocket upgrade on /websockets/ passes; frames flow both ways',
      'ok    an idle request outlives 4 s',
      'ok    an idle WebSocket outlives 4 s',
      'no problems found',
    ]) assert.ok(r.stdout.includes(line), `missing "${line}" in:\n${r.stdout}`);
    assert.match(r.stdout, /ok {4}\/socket\.io\/ reaches tidings \(401 TIDINGS_SESSION_MISSING without a session, as it should\)/);
    assert.match(r.stdout, /ok {4}Server-Sent Events are not buffered/);
    assert.match(r.stdout, /ok {4}streamed responses are not buffered/);
  });

  it('a broken config fails the upgrade, buffering, idle, Host and X-Forwarded-For checks, each with the nginx fix', async () => {
    const r = await diag(broken.url, 4);
    assert.equal(r.code, 1, r.stdout);
    const fails = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    const expect: [RegExp, RegExp][] = [
      [/the Host that arrives \(127\.0\.0\.1:\d+\) is not the one asked for/, /nginx: {3}proxy_set_header Host \$http_host;/],
      [/the proxy does not send X-Forwarded-For|no X-Forwarded-For/, /proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/],
      [/WebSocket upgrade on \/websockets\/ did not pass: HTTP 404 came back instead of 101/, /proxy_set_header Upgrade \$http_upgrade;/],
      [/Server-Sent Events are buffered/, /proxy_buffering off;/],
      [/streamed responses are buffered/, /proxy_buffering off;/],
      [/an idle request was cut after \d+ s with HTTP 504/, /proxy_read_timeout 75s;/],
    ];
    for (const [what, fix] of expect) {
      assert.ok(r.stdout.match(what), `no ${what} in:\n${r.stdout}`);
      assert.match(r.stdout, fix);
    }
    assert.ok(fails.length >= 5, r.stdout);
    assert.match(r.stdout, /\d+ problems found\n$/);
  });

  it('a location that sends /socket.io/ elsewhere, and a read timeout below the idle wait, which cuts both an idle request and an idle WebSocket', async () => {
    const r = await diag(impatient.url, 4);
    assert.equal(r.code, 1, r.stdout);
    const fails = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    assert.equal(fails.length, 3, r.stdout);
    // This one also sends /socket.io/ somewhere else than tidings.
    assert.match(fails[0], /^FAIL {2}\/socket\.io\/ does not reach tidings: HTTP 404 without tidings' JSON error$/);
    assert.match(fails[1], /^FAIL {2}an idle request was cut after \d+ s with HTTP 504/);
    assert.match(fails[2], /^FAIL {2}an idle WebSocket was cut: closed \(\d+\) after \d+ s and 1 message\(s\)$/);
    assert.match(r.stdout, /ok {4}WebSocket upgrade on \/websockets\/ passes/);
    assert.match(r.stdout, /3 problems found\n$/);
  });
});
