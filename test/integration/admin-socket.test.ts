/**
 * Issue 14 item 1: local admin like doveadm. The CLI on the node's machine reaches it over the
 * UNIX socket `tidings.admin.socket` with no token (the file's mode is the access control); the
 * HTTP admin API keeps its token for remote use. A stale socket file of a killed node is taken
 * over; a live one (a second node on the same path) and a non-socket file are refused.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TidingsNode } from '../../src/app/tidings-node.js';
import { AdminSocketError } from '../../src/http/admin-socket.js';
import { makeConfigDir } from '../helpers/config-dir.js';
import { connectPlainWs, login, startNode, testLog, type TestNode } from '../helpers/node.js';
import { freePort } from '../helpers/ports.js';
import { once, waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAX_CONN = 'tidings.connections.maxPerUser';

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TIDINGS_')) env[k] = v;
  return { ...env, ...extra };
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${ROOT}bin/tidings.js`, ...args], { cwd: ROOT, env: cleanEnv(env), timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** One raw request over a UNIX socket. */
function overSocket(path: string, method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, method, path: url, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(t) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const nodes: TestNode[] = [];
after(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined);
});

describe('the local admin socket', () => {
  it('the CLI needs no token over it: status, config get (server-wide key without --context), set, unset, reload and push; HTTP stays behind the tokens', async () => {
    const n = await startNode({ properties: { 'tidings.admin.token': '', 'tidings.push.token': '' } });
    nodes.push(n);
    const sock = join(n.dir, 'run/admin.sock');
    assert.equal(n.node.adminSocketPath, sock);
    assert.ok(lstatSync(sock).isSocket());
    assert.equal(statSync(sock).mode & 0o777, 0o600);
    assert.equal(statSync(join(n.dir, 'run')).mode & 0o777, 0o700);

    const status = await cli(['status', '--config', n.dir]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`asked node ${n.node.nodeId}; 1 member`));

    const port = await cli(['config', 'get', 'tidings.http.port', '--config', n.dir]);
    assert.equal(port.code, 0, port.stderr);
    assert.match(port.stdout, /^tidings\.http\.port = 0\n {2}from server scope \(tidings\.properties:1\)\n$/);
    const dflt = await cli(['config', 'get', 'tidings.cluster.heartbeatMs', '--config', n.dir]);
    assert.match(dflt.stdout, /= 2000\n {2}from the built-in default/);
    const perUser = await cli(['config', 'get', MAX_CONN, '--config', n.dir]);
    assert.equal(perUser.code, 1);
    assert.match(perUser.stderr, /may differ per context and user: give --context/);

    const set = await cli(['config', 'set', MAX_CONN, '3', '--context', '1', '--config', n.dir]);
    assert.equal(set.code, 0, set.stderr);
    // In-memory backends: the operator is told the value does not survive a restart.
    assert.match(set.stderr, /warning: .*in-memory backends: the value lives only until it restarts/);
    assert.equal(n.node.config.resolveForContext(MAX_CONN, 1).value, 3);
    assert.equal((await cli(['config', 'unset', MAX_CONN, '--context', '1', '--config', n.dir])).code, 0);
    assert.equal((await cli(['reload', '--config', n.dir])).code, 0);

    const l = await login(n.url, 'alice@example.com', 'alice-pw');
    const ws = await connectPlainWs(n.url, l, {});
    const pushed = await cli(['push', '--context', '1', '--user', '3', 'ox:mail:new', '{"subject":"over the socket"}', '--config', n.dir]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const frame = await waitFor('the pushed event', () => ws.frames.find((f) => f.name === 'ox:mail:new'));
    assert.equal(frame.args[0].subject, 'over the socket');
    ws.ws.close();

    // The same routes over TCP still want their tokens, which are empty here: disabled.
    const http = await fetch(`${n.url}/api/admin/status`);
    assert.equal(http.status, 403);
    assert.equal(((await http.json()) as any).error.code, 'TIDINGS_ADMIN_DISABLED');
    const httpPush = await fetch(`${n.url}/api/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"context":1,"user":3,"event":"x"}' });
    assert.equal(httpPush.status, 403);
    // --url forces HTTP, so the token matters again.
    const remote = await cli(['status', '--config', n.dir, '--url', n.url]);
    assert.equal(remote.code, 1);
    assert.match(remote.stderr, /TIDINGS_ADMIN_DISABLED/);
  });

  it('serves only the operator routes: login, sockets and the rest answer 404 there', async () => {
    const n = await startNode();
    nodes.push(n);
    const r = await overSocket(n.node.adminSocketPath!, 'POST', '/api/login', { login: 'alice@example.com', password: 'alice-pw' });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'TIDINGS_NOT_FOUND');
    assert.equal((await overSocket(n.node.adminSocketPath!, 'GET', '/api/admin/status')).status, 200);
    // A server-wide secret is never answered; a per-user key needs its context.
    const secret = await overSocket(n.node.adminSocketPath!, 'GET', '/api/admin/config?key=tidings.push.token');
    assert.deepEqual([secret.status, secret.json.value, secret.json.scope], [200, '[redacted]', 'server']);
    const perUser = await overSocket(n.node.adminSocketPath!, 'GET', `/api/admin/config?key=${MAX_CONN}`);
    assert.deepEqual([perUser.status, perUser.json.error.code], [400, 'TIDINGS_VALIDATION']);
  });

  it('group access makes it 0660; --url with --token (or TIDINGS_URL and TIDINGS_ADMIN_TOKEN) reaches a node over HTTP', async () => {
    const n = await startNode({ properties: { 'tidings.admin.socketGroupAccess': true } });
    nodes.push(n);
    assert.equal(statSync(n.node.adminSocketPath!).mode & 0o777, 0o660);
    assert.equal(statSync(join(n.dir, 'run')).mode & 0o777, 0o750, 'the group can reach the socket in the folder the node made');
    const other = makeConfigDir({ properties: { 'tidings.admin.socket': '' } });
    try {
      const r = await cli(['status', '--config', other.dir, '--url', n.url, '--token', 'test-admin-token']);
      assert.equal(r.code, 0, r.stderr);
      const fromEnv = await cli(['status', '--config', other.dir], { TIDINGS_URL: n.url, TIDINGS_ADMIN_TOKEN: 'test-admin-token' });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      const wrong = await cli(['status', '--config', other.dir, '--url', n.url, '--token', 'nope']);
      assert.match(wrong.stderr, /TIDINGS_ADMIN_UNAUTHORIZED/);
    } finally {
      other.remove();
    }
  });

  it('without a running node the CLI says which socket it tried and how to reach a node elsewhere', async () => {
    const cfg = makeConfigDir({ properties: { 'tidings.admin.token': '' } });
    try {
      const r = await cli(['status', '--config', cfg.dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^tidings: no tidings node answers on the admin socket \S+run\/admin\.sock \(no such socket\): is one running with --config \S+\? For a node elsewhere use --url URL --token TOKEN\n$/);
    } finally {
      cfg.remove();
    }
  });

  it('takes over the socket file of a node that was killed; refuses a live one and a file that is not a socket', async () => {
    const cfg = makeConfigDir();
    const sock = join(cfg.dir, 'run/admin.sock');
    try {
      // A process that dies by SIGKILL leaves its socket file behind.
      const holder = spawn(process.execPath, ['-e', `require('node:fs').mkdirSync(${JSON.stringify(join(cfg.dir, 'run'))}); require('node:net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await once(holder.stdout!, 'data');
      holder.kill('SIGKILL');
      await once(holder, 'exit');
      assert.ok(existsSync(sock), 'the stale socket file is left');

      const first = new TidingsNode({ configDir: cfg.dir, env: {}, log: testLog() });
      await first.start();
      try {
        assert.equal((await overSocket(sock, 'GET', '/api/admin/status')).json.nodeId, first.nodeId);
        // A second node on the same path: refused, the first keeps its socket.
        const second = new TidingsNode({ configDir: cfg.dir, env: { TIDINGS_HTTP_PORT: String(await freePort()) }, log: testLog() });
        await assert.rejects(second.start(), (e: unknown) => e instanceof AdminSocketError && /another running tidings node answers on the admin socket .*give this node its own \(e\.g\. TIDINGS_ADMIN_SOCKET=/.test(e.message));
        await second.stop();
        assert.equal((await overSocket(sock, 'GET', '/api/admin/status')).json.nodeId, first.nodeId);
      } finally {
        await first.stop();
      }
      assert.ok(!existsSync(sock), 'a clean stop removes the socket file');

      // A directory the node may not write (a read-only config mount): one clear reason, no stack.
      const ro = new TidingsNode({ configDir: cfg.dir, env: { TIDINGS_ADMIN_SOCKET: '/proc/tidings-admin.sock' }, log: testLog() });
      await assert.rejects(ro.start(), (e: unknown) => e instanceof AdminSocketError && /^cannot create the admin socket \/proc\/tidings-admin\.sock \(E[A-Z]+\); set tidings\.admin\.socket to a path the node may write/.test(e.message));
      await ro.stop();

      writeFileSync(sock, 'not a socket');
      const third = new TidingsNode({ configDir: cfg.dir, env: {}, log: testLog() });
      await assert.rejects(third.start(), /exists and is not a socket/);
      await third.stop();
      assert.equal(readFileSync(sock, 'utf8'), 'not a socket');
    } finally {
      cfg.remove();
    }
  });
});

describe('the command line', () => {
  it('--version prints the version from package.json', async () => {
    const r = await cli(['--version']);
    assert.equal(r.stdout, `${JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).version}\n`);
  });

  it('a second node on a busy port prints one clear line pointing to TIDINGS_HTTP_PORT, nothing else on stderr, and no fatal log', async () => {
    const n = await startNode();
    nodes.push(n);
    const port = new URL(n.url).port;
    const cfg = makeConfigDir({ properties: { 'tidings.http.port': port } });
    try {
      const child = spawn(process.execPath, [`${ROOT}dist/src/main.js`, 'serve', '--config', cfg.dir], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout!.on('data', (c) => (out += c));
      child.stderr!.on('data', (c) => (err += c));
      const [code] = await once<[number]>(child, 'exit', 20_000);
      await waitFor('stderr to drain', () => child.stderr!.readableEnded || child.stderr!.destroyed, 2000).catch(() => undefined);
      assert.equal(code, 1);
      assert.equal(err, `tidings: cannot listen on 127.0.0.1:${port}: the port is in use (another tidings node?); to run a second one, give it another port, e.g. TIDINGS_HTTP_PORT=${Number(port) + 1} TIDINGS_ADMIN_SOCKET=run/admin-${Number(port) + 1}.sock npm start\n`);
      assert.doesNotMatch(out, /"level":60|stack/);
    } finally {
      cfg.remove();
    }
  });
});
