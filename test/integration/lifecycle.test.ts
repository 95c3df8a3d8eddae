import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeConfigDir } from '../helpers/config-dir.js';
import { connectPlainWs, connectSocketIo, login } from '../helpers/node.js';
import { BIN, MAIN, run, startProcessNode } from '../helpers/process-node.js';
import { once, waitFor } from '../helpers/wait.js';
import { verifyPassword } from '../../src/auth/passwords.js';

describe('process lifecycle', () => {
  it('SIGTERM closes sockets with "going away" and exits 0 within 10 s', async () => {
    const cfg = makeConfigDir();
    const p = await startProcessNode(cfg.dir);
    try {
      const l = await login(p.url, 'alice@example.com', 'alice-pw');
      const ws = await connectPlainWs(p.url, l, {});
      const sio = await connectSocketIo(p.url, l, { transports: ['websocket'] });
      const wsClosed = once<[number, Buffer]>(ws.ws, 'close');
      const sioGone = once<[string, unknown]>(sio, 'disconnect');
      const t0 = Date.now();
      p.kill('SIGTERM');
      const [code] = await wsClosed;
      assert.equal(code, 1001);
      assert.equal((await sioGone)[0], 'io server disconnect');
      const exit = await p.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(Date.now() - t0 < 10_000);
      assert.ok(p.lines.some((j) => j.msg === 'tidings stopped'));
    } finally {
      p.kill('SIGKILL');
      cfg.remove();
    }
  });

  it('a bad file at start-up is a one-line error naming file, line and key, and a non-zero exit', async () => {
    const cases: [string, string, RegExp][] = [
      ['tidings.properties', 'tidings.http.port=0\ntidings.session.lifetimeSeconds=soon\n', /^tidings: configuration error: tidings\.properties:2: tidings\.session\.lifetimeSeconds: expected an integer/],
      ['tidings.properties', 'tidings.http.port=0\n\ntidings.htp.port=1\n', /^tidings: configuration error: tidings\.properties:3: tidings\.htp\.port: unknown key/],
      ['websockets.properties', 'com.openexchange.websockets.enabled=maybe\n', /^tidings: configuration error: websockets\.properties:1: com\.openexchange\.websockets\.enabled: expected a boolean/],
      ['extra.properties', 'tidings.x=\\u12G4\n', /^tidings: configuration error: extra\.properties:1: tidings\.x: malformed/],
      ['directory.yml', 'contexts:\n  - id: 1\nusers:\n  - { id: 3, context: 9, login: a, password: "{PLAIN}x" }\n', /^tidings: configuration error: directory\.yml:4: context: no context with id 9/],
    ];
    for (const [file, text, expected] of cases) {
      const cfg = makeConfigDir({ files: { [file]: text } });
      try {
        const r = await run(process.execPath, [MAIN, 'serve', '--config', cfg.dir]);
        assert.equal(r.code, 2, `${file}: exit code`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `${file}: one line, got ${r.stderr}`);
        assert.match(lines[0], expected);
      } finally {
        cfg.remove();
      }
    }
  });

  it('environment variables override files', async () => {
    const cfg = makeConfigDir({ properties: { 'tidings.push.token': 'from-file' } });
    const p = await startProcessNode(cfg.dir, { TIDINGS_PUSH_TOKEN: 'from-env' });
    try {
      const body = JSON.stringify({ context: 1, user: 3, event: 'e' });
      const h = (t: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${t}` });
      assert.equal((await fetch(`${p.url}/api/push`, { method: 'POST', headers: h('from-file'), body })).status, 401);
      assert.equal((await fetch(`${p.url}/api/push`, { method: 'POST', headers: h('from-env'), body })).status, 202);
    } finally {
      p.kill('SIGKILL');
      cfg.remove();
    }
  });
});

describe('CLI', () => {
  it('hash-password prints a hash that verifies, for both schemes', async () => {
    for (const scheme of ['ARGON2ID', 'SCRYPT']) {
      const r = await run(process.execPath, [BIN, 'hash-password', '--scheme', scheme], { input: 'pa55word\n' });
      assert.equal(r.code, 0, r.stderr);
      const hash = r.stdout.trim();
      assert.ok(hash.startsWith(`{${scheme}}`), hash);
      assert.equal(await verifyPassword('pa55word', hash), true);
      assert.equal(await verifyPassword('other', hash), false);
    }
  });

  it('push publishes to a running node; a bad JSON argument is a clear error', async () => {
    const cfg = makeConfigDir();
    const p = await startProcessNode(cfg.dir);
    try {
      const l = await login(p.url, 'alice@example.com', 'alice-pw');
      const ws = await connectPlainWs(p.url, l, {});
      const r = await run(process.execPath, [BIN, 'push', '--config', cfg.dir, '--url', p.url, '--context', '1', '--user', '3', 'ox:mail:new', '{"subject":"from the CLI"}']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^published e[0-9a-z]+-\d+$/m);
      await waitFor('the event', () => ws.frames.length === 1);
      assert.deepEqual(ws.frames[0].args, [{ subject: 'from the CLI' }]);
      const bad = await run(process.execPath, [BIN, 'push', '--config', cfg.dir, '--url', p.url, '--context', '1', '--user', '3', 'e', '{nope']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^tidings: the data is not valid JSON/);
      const unknown = await run(process.execPath, [BIN, 'push', '--config', cfg.dir, '--url', p.url, '--context', '1', '--user', '77', 'e']);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /TIDINGS_UNKNOWN_USER/);
      ws.ws.close();
    } finally {
      p.kill('SIGKILL');
      cfg.remove();
    }
  });
});
