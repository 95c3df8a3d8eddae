/**
 * Issue 4 through a real node: the admin API and the CLI for run-time values (with scope and source),
 * reload by route, CLI, SIGHUP and file watching, broken files keeping the old configuration,
 * non-reloadable keys, environment overrides and the remote-buffer timings being reloadable.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { memoryBackends } from '../../src/app/backends.js';
import { MemoryCluster } from '../../src/adapters/memory/memory-cluster.js';
import { ConfigError } from '../../src/config/config-error.js';
import { ADMIN_TOKEN, makeConfigDir, PUSH_TOKEN } from '../helpers/config-dir.js';
import { captureLog, connectPlainWs, login, push, startNode, type LogLine, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENABLED = 'com.openexchange.websockets.enabled';
const DELAY = 'com.openexchange.websockets.grizzly.remote.delayDuration';
const MAX_DELAY = 'com.openexchange.websockets.grizzly.remote.maxDelayDuration';
const FREQ = 'com.openexchange.websockets.grizzly.remote.timerFrequency';
const MAX_CONN = 'tidings.connections.maxPerUser';
const MAX_FAIL_LOGIN = 'tidings.login.maxFailuresPerLogin';

interface Answer {
  status: number;
  json: any;
}

async function admin(url: string, method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

function q(key: string, context: number, user?: number): string {
  return new URLSearchParams({ key, context: String(context), ...(user !== undefined ? { user: String(user) } : {}) }).toString();
}

const get = (url: string, key: string, context: number, user?: number) => admin(url, 'GET', `/api/admin/config?${q(key, context, user)}`);
const put = (url: string, key: string, value: unknown, context: number, user?: number) => admin(url, 'PUT', '/api/admin/config', { key, value, context, ...(user !== undefined ? { user } : {}) });
const del = (url: string, key: string, context: number, user?: number) => admin(url, 'DELETE', `/api/admin/config?${q(key, context, user)}`);

/** 1-based line of the first (or last) line of `text` containing `needle`. */
function lineOf(text: string, needle: string, last = false): number {
  const lines = text.split('\n');
  const i = last ? lines.findLastIndex((l) => l.includes(needle)) : lines.findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `'${needle}' not in the text`);
  return i + 1;
}

/** `node bin/tidings.js …` as an operator would run it. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${ROOT}bin/tidings.js`, ...args], { cwd: ROOT, env: cleanEnv(), timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The test runner's environment without any TIDINGS_* variable, so children read only their files. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TIDINGS_')) env[k] = v;
  return { ...env, ...extra };
}

/** `node dist/src/main.js serve --config DIR` as a child; its JSON log lines are parsed as they come. */
class ServeProcess extends EventEmitter {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  exited: number | null | undefined = undefined;

  constructor(dir: string, env: Record<string, string> = {}) {
    super();
    this.child = spawn(process.execPath, [`${ROOT}dist/src/main.js`, 'serve', '--config', dir], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      try {
        this.lines.push(JSON.parse(l) as LogLine);
      } catch {
        this.lines.push({ level: 0, msg: l });
      }
    });
    createInterface({ input: this.child.stderr! }).on('line', (l) => this.stderr.push(l));
    this.child.once('exit', (code) => {
      this.exited = code;
      this.emit('exit', code);
    });
  }

  async url(): Promise<string> {
    const line = await waitFor('the "tidings listening on" log line', () => {
      if (this.exited !== undefined) throw new Error(`serve exited with ${this.exited}: ${this.stderr.join('\n')}`);
      return this.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('tidings listening on http://'));
    }, 20_000);
    return /(http:\/\/\S+)/.exec(line.msg)![1];
  }

  /** SIGTERM, then SIGKILL if it does not exit in time; by pid, only this child. */
  async kill(): Promise<void> {
    if (this.exited !== undefined || this.child.pid === undefined) return;
    const gone = new Promise<void>((r) => this.once('exit', () => r()));
    process.kill(this.child.pid, 'SIGTERM');
    const t = setTimeout(() => this.child.pid !== undefined && this.exited === undefined && process.kill(this.child.pid, 'SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
}

const DIRECTORY = `# contexts and users for the config tests
contexts:
  - id: 1
    name: example.com
    tags: [premium]
  - id: 2
    name: other.org
    config:
      ${MAX_CONN}: 5
  - id: 3
    name: legacy.net
    tags: [legacy]
  - id: 4
    name: mixed.net
    tags: [legacy]
    config: { ${MAX_CONN}: 9 }
users:
  - id: 3
    context: 1
    login: alice@example.com
    password: "{PLAIN}alice-pw"
    config:
      ${MAX_CONN}: 3
  - { id: 4, context: 1, login: bob@example.com, password: "{PLAIN}bob-pw" }
  - { id: 3, context: 2, login: carol@other.org, password: "{PLAIN}carol-pw" }
  - { id: 7, context: 4, login: dave@mixed.net, password: "{PLAIN}dave-pw", config: { ${MAX_CONN}: 1 } }
  - { id: 8, context: 4, login: eve@mixed.net, password: "{PLAIN}eve-pw" }
`;
/** alice's own value. */
const ALICE_LINE = lineOf(DIRECTORY, `${MAX_CONN}: 3`);
const WEBSOCKETS = `# remote buffer
! a comment of the other kind

${DELAY} = 1500
`;
const LIMITS = `# legacy contexts get fewer connections
legacy:
  withTags: legacy & !premium
  ${MAX_CONN}: 2
`;
const PIN = `tidings.session.ipCheck:
  final: server
tidings.login.failureWindowSeconds: { value: 120 }
`;

describe('admin API: config get/set/unset, with scope and source', () => {
  let n: TestNode;
  before(async () => {
    n = await startNode({
      directory: DIRECTORY,
      properties: { 'tidings.session.lifetimeSeconds': 1800, 'tidings.login.maxFailuresPerIp': 7 },
      files: { 'websockets.properties': WEBSOCKETS, 'contextSets/limits.yml': LIMITS, 'meta/pin.yml': PIN },
      env: { TIDINGS_SESSION_LIFETIMESECONDS: '900' },
    });
  });
  after(async () => n?.stop());

  it('resolves through every scope from real files, naming file:line, env or the built-in default', async () => {
    const props = (await import('node:fs')).readFileSync(`${n.dir}/tidings.properties`, 'utf8');
    const cases: [string, number, number | undefined, unknown, string, string][] = [
      [MAX_CONN, 1, 3, 3, 'user', `directory.yml:${ALICE_LINE}`],
      [MAX_CONN, 1, 4, 8, 'default', 'built-in default'],
      [MAX_CONN, 2, undefined, 5, 'context', `directory.yml:${lineOf(DIRECTORY, MAX_CONN)}`],
      [MAX_CONN, 2, 3, 5, 'context', `directory.yml:${lineOf(DIRECTORY, MAX_CONN)}`],
      [MAX_CONN, 3, undefined, 2, 'contextSets', `contextSets/limits.yml:${lineOf(LIMITS, MAX_CONN)} (block legacy)`],
      // Context 4 matches the same context set, but its own value wins, and a user's own value over that.
      [MAX_CONN, 4, 8, 9, 'context', `directory.yml:${lineOf(DIRECTORY, `${MAX_CONN}: 9`)}`],
      [MAX_CONN, 4, 7, 1, 'user', `directory.yml:${lineOf(DIRECTORY, `${MAX_CONN}: 1`)}`],
      // A meta value replaces the .properties value; final: server ignores nothing else here.
      ['tidings.login.failureWindowSeconds', 1, 3, 120, 'server', `meta/pin.yml:${lineOf(PIN, 'failureWindowSeconds')}`],
      ['tidings.session.ipCheck', 1, 3, false, 'default', 'built-in default'],
      [DELAY, 1, 3, 1500, 'server', `websockets.properties:${lineOf(WEBSOCKETS, DELAY)}`],
      ['tidings.login.maxFailuresPerIp', 1, undefined, 7, 'server', `tidings.properties:${lineOf(props, 'maxFailuresPerIp')}`],
      ['tidings.session.lifetimeSeconds', 1, 3, 900, 'server', 'env:TIDINGS_SESSION_LIFETIMESECONDS'],
      [ENABLED, 1, 3, true, 'default', 'built-in default'],
      [MAX_FAIL_LOGIN, 1, 3, 5, 'default', 'built-in default'],
    ];
    for (const [key, context, user, value, scope, source] of cases) {
      const r = await get(n.url, key, context, user);
      const what = `${key} for ${user ?? '-'}@${context}`;
      assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.json)}`);
      assert.deepEqual({ value: r.json.value, scope: r.json.scope, source: r.json.source }, { value, scope, source }, what);
      assert.equal(r.json.key, key);
      assert.equal(r.json.context, context);
      assert.equal(r.json.user, user ?? null);
    }
  });

  it('set stores a run-time value that wins over directory.yml at the same scope; unset brings the file value back', async () => {
    const fileSource = `directory.yml:${ALICE_LINE}`;
    const s = await put(n.url, MAX_CONN, 4, 1, 3);
    assert.equal(s.status, 200, JSON.stringify(s.json));
    assert.deepEqual([s.json.ok, s.json.value, s.json.scope, s.json.source], [true, 4, 'user', 'store']);
    assert.equal(s.json.note, undefined);
    const g = await get(n.url, MAX_CONN, 1, 3);
    assert.deepEqual([g.json.value, g.json.scope, g.json.source], [4, 'user', 'store']);
    // The context scope and other users are untouched.
    assert.equal((await get(n.url, MAX_CONN, 1, 4)).json.scope, 'default');
    assert.equal((await get(n.url, MAX_CONN, 1)).json.scope, 'default');

    const d = await del(n.url, MAX_CONN, 1, 3);
    assert.equal(d.status, 200);
    assert.deepEqual([d.json.removed, d.json.value, d.json.scope, d.json.source], [true, 3, 'user', fileSource]);
    assert.deepEqual([(await get(n.url, MAX_CONN, 1, 3)).json.source], [fileSource]);
    const again = await del(n.url, MAX_CONN, 1, 3);
    assert.equal(again.json.removed, false);
  });

  it('a context-scope run-time value applies to every user of the context without one of their own', async () => {
    assert.equal((await put(n.url, ENABLED, 'false', 1)).status, 200);
    assert.deepEqual(pick((await get(n.url, ENABLED, 1, 4)).json), [false, 'context', 'store']);
    assert.deepEqual(pick((await get(n.url, ENABLED, 1)).json), [false, 'context', 'store']);
    assert.deepEqual(pick((await get(n.url, ENABLED, 2, 3)).json), [true, 'default', 'built-in default']);
    // The store wins over directory.yml at the same scope, not over a narrower scope.
    assert.equal((await put(n.url, MAX_CONN, '6', 2)).json.value, 6);
    assert.deepEqual(pick((await get(n.url, MAX_CONN, 2, 3)).json), [6, 'context', 'store']);
    assert.equal((await put(n.url, MAX_CONN, 1, 1)).status, 200);
    assert.equal((await get(n.url, MAX_CONN, 1, 3)).json.scope, 'user');
    for (const [key, ctx] of [[ENABLED, 1], [MAX_CONN, 2], [MAX_CONN, 1]] as const) assert.equal((await del(n.url, key, ctx)).json.removed, true);
    assert.deepEqual(pick((await get(n.url, ENABLED, 1, 4)).json), [true, 'default', 'built-in default']);
  });

  it('run-time values survive a reload of the files', async () => {
    await put(n.url, ENABLED, false, 1, 4);
    const r = await admin(n.url, 'POST', '/api/admin/reload');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(pick((await get(n.url, ENABLED, 1, 4)).json), [false, 'user', 'store']);
    await del(n.url, ENABLED, 1, 4);
  });

  it('refuses a value of the wrong type with 400 TIDINGS_CONFIG_TYPE naming the expected type', async () => {
    const cases: [string, unknown, RegExp][] = [
      [ENABLED, 'maybe', /a boolean \(true or false\)/],
      [ENABLED, 1, /a boolean/],
      [MAX_CONN, 'lots', /an integer from 1 to 10000/],
      [MAX_CONN, 0, /an integer from 1 to 10000/],
      [MAX_CONN, '2.5', /an integer/],
    ];
    for (const [key, value, expected] of cases) {
      const r = await put(n.url, key, value, 1, 3);
      assert.equal(r.status, 400, `${key}=${value}`);
      assert.equal(r.json.error.code, 'TIDINGS_CONFIG_TYPE');
      assert.match(r.json.error.message, expected);
      assert.match(r.json.error.message, new RegExp(key.replace(/\./g, '\\.')));
      assert.match(r.json.error.details.expected, expected);
    }
    // Nothing was stored.
    assert.equal((await get(n.url, ENABLED, 1, 3)).json.scope, 'default');
  });

  it('refuses a server-wide key at context or user scope', async () => {
    for (const user of [undefined, 3]) {
      const r = await put(n.url, DELAY, 10, 1, user);
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, 'TIDINGS_KEY_SERVER_WIDE');
      assert.match(r.json.error.message, /server-wide/);
    }
    assert.equal((await del(n.url, DELAY, 1)).status, 400);
    // Reading it per context is fine: it comes from the server scope.
    assert.deepEqual(pick((await get(n.url, DELAY, 1)).json), [1500, 'server', `websockets.properties:${lineOf(WEBSOCKETS, DELAY)}`]);
  });

  it('refuses unknown keys, contexts and users', async () => {
    const unknownKey = [await get(n.url, 'tidings.nope', 1), await put(n.url, 'tidings.nope', 1, 1), await del(n.url, 'tidings.nope', 1)];
    for (const r of unknownKey) assert.deepEqual([r.status, r.json.error.code], [400, 'TIDINGS_UNKNOWN_KEY']);
    for (const r of [await get(n.url, ENABLED, 99), await put(n.url, ENABLED, false, 99), await del(n.url, ENABLED, 99)]) {
      assert.deepEqual([r.status, r.json.error.code], [404, 'TIDINGS_UNKNOWN_CONTEXT']);
    }
    // User 4 exists in context 1, not in context 2.
    for (const r of [await get(n.url, ENABLED, 1, 77), await get(n.url, ENABLED, 2, 4), await put(n.url, ENABLED, false, 2, 4), await del(n.url, ENABLED, 2, 4)]) {
      assert.deepEqual([r.status, r.json.error.code], [404, 'TIDINGS_UNKNOWN_USER']);
    }
    const missing = await admin(n.url, 'GET', '/api/admin/config?context=1');
    assert.deepEqual([missing.status, missing.json.error.code], [400, 'TIDINGS_VALIDATION']);
    const noContext = await admin(n.url, 'PUT', '/api/admin/config', { key: ENABLED, value: false });
    assert.deepEqual([noContext.status, noContext.json.error.code], [400, 'TIDINGS_VALIDATION']);
    const badValue = await admin(n.url, 'PUT', '/api/admin/config', { key: ENABLED, value: { x: 1 }, context: 1 });
    assert.deepEqual([badValue.status, badValue.json.error.code], [400, 'TIDINGS_VALIDATION']);
  });

  it('keys outside the schema are refused at set, readable at get; secrets are never answered', async () => {
    const r = await put(n.url, 'com.example.theme', 'dark', 1);
    assert.deepEqual([r.status, r.json.error.code], [400, 'TIDINGS_UNKNOWN_KEY']);
    assert.equal((await get(n.url, 'com.example.theme', 1, 3)).json.scope, 'default');
    const secret = await get(n.url, 'tidings.admin.token', 1);
    assert.equal(secret.json.value, '[redacted]');
    assert.ok(!JSON.stringify(secret.json).includes(ADMIN_TOKEN));
  });

  it('a value pinned by meta final at a wider scope is stored but not in force, and the answer says so', async () => {
    const r = await put(n.url, 'tidings.session.ipCheck', true, 1, 3);
    assert.equal(r.status, 200);
    assert.deepEqual([r.json.value, r.json.scope], [false, 'default']);
    assert.match(r.json.note, /pinned/);
    await del(n.url, 'tidings.session.ipCheck', 1, 3);
  });

  it('answers 401 without or with a wrong admin token', async () => {
    for (const token of [null, 'wrong', `${ADMIN_TOKEN}x`]) {
      for (const r of [
        await admin(n.url, 'GET', `/api/admin/config?${q(ENABLED, 1)}`, undefined, token),
        await admin(n.url, 'PUT', '/api/admin/config', { key: ENABLED, value: false, context: 1 }, token),
        await admin(n.url, 'DELETE', `/api/admin/config?${q(ENABLED, 1)}`, undefined, token),
        await admin(n.url, 'POST', '/api/admin/reload', undefined, token),
      ]) {
        assert.deepEqual([r.status, r.json.error.code], [401, 'TIDINGS_ADMIN_UNAUTHORIZED'], `token ${token}`);
      }
    }
    assert.equal((await get(n.url, ENABLED, 1)).json.scope, 'default');
  });
});

function pick(j: any): unknown[] {
  return [j.value, j.scope, j.source];
}

describe('admin API disabled', () => {
  it('answers 403 TIDINGS_ADMIN_DISABLED while tidings.admin.token is empty, whatever the token', async () => {
    const n = await startNode({ properties: { 'tidings.admin.token': '' } });
    try {
      for (const token of [null, ADMIN_TOKEN, '']) {
        const r = await admin(n.url, 'GET', `/api/admin/config?${q(ENABLED, 1)}`, undefined, token);
        assert.deepEqual([r.status, r.json.error.code], [403, 'TIDINGS_ADMIN_DISABLED']);
      }
      assert.equal((await admin(n.url, 'POST', '/api/admin/reload')).status, 403);
    } finally {
      await n.stop();
    }
  });
});

describe('CLI: tidings config get|set|unset and reload', () => {
  let n: TestNode;
  before(async () => {
    n = await startNode({ directory: DIRECTORY, files: { 'websockets.properties': WEBSOCKETS, 'contextSets/limits.yml': LIMITS } });
  });
  after(async () => n?.stop());
  const at = () => ['--config', n.dir, '--url', n.url];

  it('get prints the value and where it came from', async () => {
    // Independent commands, run side by side to keep the test short.
    const [user, set, server, def] = await Promise.all([
      cli(['config', 'get', MAX_CONN, '--context', '1', '--user', '3', ...at()]),
      cli(['config', 'get', MAX_CONN, '--context', '3', ...at()]),
      cli(['config', 'get', DELAY, '--context', '1', ...at()]),
      cli(['config', 'get', ENABLED, '--context', '1', '--user', '4', ...at()]),
    ]);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(user.stdout, `${MAX_CONN} = 3\n  from user scope (directory.yml:${ALICE_LINE})\n`);
    assert.equal(set.stdout, `${MAX_CONN} = 2\n  from contextSets scope (contextSets/limits.yml:${lineOf(LIMITS, MAX_CONN)} (block legacy))\n`);
    assert.equal(server.stdout, `${DELAY} = 1500\n  from server scope (websockets.properties:${lineOf(WEBSOCKETS, DELAY)})\n`);
    assert.equal(def.stdout, `${ENABLED} = true\n  from the built-in default\n`);
  });

  it('set and unset change the value in force; get then names the store', async () => {
    const s = await cli(['config', 'set', ENABLED, 'false', '--context', '1', '--user', '4', ...at()]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^set com\.openexchange\.websockets\.enabled = false for user 4@1\n/);
    const g = await cli(['config', 'get', ENABLED, '--context', '1', '--user', '4', ...at()]);
    assert.equal(g.stdout, `${ENABLED} = false\n  from user scope (store)\n`);
    assert.equal(n.node.config.resolve(ENABLED, { userId: 4, contextId: 1 }).value, false);
    const u = await cli(['config', 'unset', ENABLED, '--context', '1', '--user', '4', ...at()]);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(u.stdout, `unset ${ENABLED}\n  now true from the built-in default\n`);
    const again = await cli(['config', 'unset', ENABLED, '--context', '1', '--user', '4', ...at()]);
    assert.match(again.stdout, /had no run-time value there/);
  });

  it('refuses a wrong type, an unknown context and a server-wide key with the reason and exit code 1', async () => {
    const [bad, ctx, wide] = await Promise.all([
      cli(['config', 'set', MAX_CONN, 'many', '--context', '1', ...at()]),
      cli(['config', 'get', ENABLED, '--context', '42', ...at()]),
      cli(['config', 'set', DELAY, '5', '--context', '1', ...at()]),
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /TIDINGS_CONFIG_TYPE: tidings\.connections\.maxPerUser expects an integer from 1 to 10000, got 'many'/);
    assert.equal(ctx.code, 1);
    assert.match(ctx.stderr, /TIDINGS_UNKNOWN_CONTEXT/);
    assert.equal(wide.code, 1);
    assert.match(wide.stderr, /server-wide/);
  });

  it('uses the admin token from the config directory: a wrong one is refused', async () => {
    const other = makeConfigDir({ properties: { 'tidings.admin.token': 'not-the-right-one' } });
    try {
      const r = await cli(['config', 'get', ENABLED, '--context', '1', '--config', other.dir, '--url', n.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /TIDINGS_ADMIN_UNAUTHORIZED/);
    } finally {
      other.remove();
    }
  });

  it('reload re-reads the files; with a broken file it reports file, line and key and the old configuration stays', async () => {
    n.write('websockets.properties', `${DELAY}=2500\n`);
    const ok = await cli(['reload', ...at()]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `reloaded; changed: ${DELAY}\n`);
    assert.equal(n.node.config.settings[DELAY], 2500);

    n.write('websockets.properties', `${DELAY}=2600\n`);
    n.write('contextSets/broken.yml', 'b:\n  withTags: premium & | beta\n');
    const bad = await cli(['reload', ...at()]);
    assert.equal(bad.code, 1);
    // The CLI reads the token despite the broken file, and the node names the problem.
    assert.match(bad.stderr, /TIDINGS_CONFIG_INVALID: .*contextSets\/broken\.yml:2: b: .*withTags/);
    assert.equal(n.node.config.settings[DELAY], 2500);
    n.write('contextSets/broken.yml', '');
  });
});

describe('reload: route, broken files, non-reloadable keys', () => {
  let n: TestNode;
  let lines: LogLine[];
  const baseProps = `tidings.http.port=0\ntidings.admin.token=${ADMIN_TOKEN}\ntidings.config.watch=false\ntidings.session.lifetimeSeconds=1800\n`;
  before(async () => {
    const cap = captureLog();
    lines = cap.lines;
    n = await startNode({ directory: DIRECTORY, files: { 'websockets.properties': WEBSOCKETS, 'contextSets/limits.yml': LIMITS }, log: cap.log });
    n.write('tidings.properties', baseProps);
    assert.equal((await reload()).status, 200);
  });
  after(async () => n?.stop());
  const reload = () => admin(n.url, 'POST', '/api/admin/reload');
  const logged = (pred: (l: LogLine) => boolean) => lines.filter(pred);

  it('the admin route reloads: changed keys are answered and take effect', async () => {
    n.write('websockets.properties', `# moved down\n\n${DELAY}=1700\n`);
    n.write('contextSets/limits.yml', LIMITS.replace(`${MAX_CONN}: 2`, `${MAX_CONN}: 4`));
    const r = await reload();
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json, { ok: true, changed: [DELAY], restartNeeded: [] });
    assert.equal(n.node.config.settings[DELAY], 1700);
    assert.deepEqual(pick((await get(n.url, DELAY, 1)).json), [1700, 'server', 'websockets.properties:3']);
    assert.deepEqual(pick((await get(n.url, MAX_CONN, 3)).json), [4, 'contextSets', `contextSets/limits.yml:${lineOf(LIMITS, MAX_CONN)} (block legacy)`]);
    assert.ok(logged((l) => String(l.msg).startsWith('configuration reloaded')).length > 0);
  });

  const broken: { name: string; file: string; text: string; line: number; key: string | null; reason: RegExp }[] = [
    { name: 'a properties value of the wrong type', file: 'tidings.properties', text: `${baseProps}tidings.session.lifetimeSeconds=soon\n`, line: 5, key: 'tidings.session.lifetimeSeconds', reason: /expected an integer/ },
    { name: 'an unknown tidings key', file: 'tidings.properties', text: `${baseProps}\ntidings.sesion.lifetimeSeconds=60\n`, line: 6, key: 'tidings.sesion.lifetimeSeconds', reason: /unknown key/ },
    { name: 'a YAML syntax error in a context set', file: 'contextSets/limits.yml', text: 'legacy:\n  withTags: legacy\n\t  x: 1\n', line: 3, key: null, reason: /invalid YAML/ },
    { name: 'a bad withTags', file: 'contextSets/limits.yml', text: `legacy:\n  withTags: (legacy | premium\n  ${MAX_CONN}: 9\n`, line: 2, key: 'legacy', reason: /invalid withTags.*unbalanced/ },
    { name: 'a bad value in a context set', file: 'contextSets/limits.yml', text: `legacy:\n  withTags: legacy\n  ${ENABLED}: perhaps\n`, line: 3, key: ENABLED, reason: /expected a boolean/ },
    { name: 'a YAML syntax error in directory.yml', file: 'directory.yml', text: DIRECTORY.replace('tags: [legacy]', 'tags: [legacy'), line: 13, key: null, reason: /YAML/ },
    { name: 'a bad user value in directory.yml', file: 'directory.yml', text: DIRECTORY.replace(`${MAX_CONN}: 3`, `${MAX_CONN}: three`), line: ALICE_LINE, key: MAX_CONN, reason: /expected an integer/ },
    { name: 'a bad meta scope', file: 'meta/x.yml', text: `${ENABLED}:\n  final: reseller\n`, line: 2, key: ENABLED, reason: /unknown scope/ },
  ];
  for (const b of broken) {
    it(`a broken file (${b.name}) keeps the old configuration and logs file, line and key`, async () => {
      const { readFileSync, rmSync } = await import('node:fs');
      const path = `${n.dir}/${b.file}`;
      let old: string | null = null;
      try {
        old = readFileSync(path, 'utf8');
      } catch {
        old = null;
      }
      const before = { delay: n.node.config.settings[DELAY], lifetime: n.node.config.settings['tidings.session.lifetimeSeconds'], legacy: (await get(n.url, MAX_CONN, 3)).json.value };
      // A valid change elsewhere in the same reload must not apply either: the new configuration is taken whole or not at all.
      n.write('websockets.properties', `${DELAY}=1999\n`);
      n.write(b.file, b.text);
      const mark = lines.length;
      try {
        const r = await reload();
        assert.equal(r.status, 422, JSON.stringify(r.json));
        assert.equal(r.json.error.code, 'TIDINGS_CONFIG_INVALID');
        assert.deepEqual(r.json.error.details, { file: b.file, line: b.line, key: b.key });
        assert.match(r.json.error.message, b.reason);
        const errors = lines.slice(mark).filter((l) => l.level === 50);
        assert.equal(errors.length, 1, JSON.stringify(errors));
        assert.deepEqual([errors[0].file, errors[0].line, errors[0].key], [b.file, b.line, b.key]);
        assert.match(errors[0].msg, /old one stays in force/);
        assert.ok(errors[0].msg.includes(`${b.file}:${b.line}`), errors[0].msg);
        assert.match(String(errors[0].reason), b.reason);
        assert.equal(n.node.config.settings[DELAY], before.delay);
        assert.equal(n.node.config.settings['tidings.session.lifetimeSeconds'], before.lifetime);
        assert.equal((await get(n.url, MAX_CONN, 3)).json.value, before.legacy);
        // Logins still work on the old directory.
        await login(n.url, 'alice@example.com', 'alice-pw');
      } finally {
        if (old === null) rmSync(path);
        else n.write(b.file, old);
        n.write('websockets.properties', `${DELAY}=${before.delay}\n`);
        assert.equal((await reload()).status, 200);
      }
    });
  }

  it('a changed non-reloadable key logs that a restart is needed and keeps its old value in force', async () => {
    const mark = lines.length;
    n.write('tidings.properties', `${baseProps}tidings.socketio.pingIntervalMs=30000\ntidings.http.maxBodyBytes=131072\ntidings.longpoll.holdSeconds=20\n`);
    const r = await reload();
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.changed, ['tidings.longpoll.holdSeconds']);
    assert.deepEqual(r.json.restartNeeded, ['tidings.http.maxBodyBytes', 'tidings.socketio.pingIntervalMs']);
    const warns = lines.slice(mark).filter((l) => l.level === 40);
    for (const key of ['tidings.socketio.pingIntervalMs', 'tidings.http.maxBodyBytes']) {
      const w = warns.find((l) => l.key === key);
      assert.ok(w, `no warning for ${key}: ${JSON.stringify(warns)}`);
      assert.match(w.msg, /restart/);
      assert.match(w.msg, /tidings\.properties:\d+/);
    }
    assert.equal(n.node.config.settings['tidings.socketio.pingIntervalMs'], 25000);
    assert.equal(n.node.config.settings['tidings.http.maxBodyBytes'], 65536);
    assert.equal(n.node.config.settings['tidings.longpoll.holdSeconds'], 20);
    assert.deepEqual(pick((await get(n.url, 'tidings.socketio.pingIntervalMs', 1)).json), [25000, 'default', 'built-in default']);
    // Still changed on the next reload: still logged; reverted: nothing to restart for.
    const again = await reload();
    assert.deepEqual(again.json.restartNeeded, ['tidings.http.maxBodyBytes', 'tidings.socketio.pingIntervalMs']);
    assert.deepEqual(again.json.changed, []);
    n.write('tidings.properties', baseProps);
    const back = await reload();
    assert.deepEqual([back.json.changed, back.json.restartNeeded], [['tidings.longpoll.holdSeconds'], []]);
  });

  it('reports a context-set conflict once, not again on run-time changes or reloads', async () => {
    const mark = lines.length;
    n.write('contextSets/zz.yml', `other:\n  withTags: legacy\n  ${MAX_CONN}: 7\n`);
    assert.equal((await reload()).status, 200);
    const conflicts = () => lines.slice(mark).filter((l) => typeof l.conflict === 'string');
    assert.equal(conflicts().length, 1);
    assert.match(String(conflicts()[0].conflict), /contextSets\/limits\.yml:\d+ \(block legacy\).*contextSets\/zz\.yml:3 \(block other\)/);
    await put(n.url, ENABLED, false, 1, 3);
    await del(n.url, ENABLED, 1, 3);
    assert.equal((await reload()).status, 200);
    assert.equal(conflicts().length, 1);
    n.write('contextSets/zz.yml', '');
    assert.equal((await reload()).status, 200);
  });
});

describe('environment overrides', () => {
  it('the environment wins over files, also after a reload', async () => {
    const n = await startNode({
      properties: { 'tidings.longpoll.holdSeconds': 30 },
      files: { 'websockets.properties': `${ENABLED}=true\n` },
      env: { TIDINGS_LONGPOLL_HOLDSECONDS: '12', COM_OPENEXCHANGE_WEBSOCKETS_ENABLED: 'false', TIDINGS_HTTP_HOST: '127.0.0.1' },
    });
    try {
      assert.equal(n.node.config.settings['tidings.longpoll.holdSeconds'], 12);
      assert.deepEqual(pick((await get(n.url, 'tidings.longpoll.holdSeconds', 1)).json), [12, 'server', 'env:TIDINGS_LONGPOLL_HOLDSECONDS']);
      assert.deepEqual(pick((await get(n.url, ENABLED, 1, 3)).json), [false, 'server', 'env:COM_OPENEXCHANGE_WEBSOCKETS_ENABLED']);
      n.write('tidings.properties', `tidings.http.port=0\ntidings.admin.token=${ADMIN_TOKEN}\ntidings.push.token=${PUSH_TOKEN}\ntidings.config.watch=false\ntidings.longpoll.holdSeconds=33\n`);
      const r = await admin(n.url, 'POST', '/api/admin/reload');
      assert.deepEqual(r.json.changed, []);
      assert.equal(n.node.config.settings['tidings.longpoll.holdSeconds'], 12);
      // A context or user value still wins over the (environment's) server value.
      await put(n.url, ENABLED, true, 1, 3);
      assert.deepEqual(pick((await get(n.url, ENABLED, 1, 3)).json), [true, 'user', 'store']);
    } finally {
      await n.stop();
    }
  });

  it('an environment value of the wrong type stops the start with its name', async () => {
    await assert.rejects(startNode({ env: { TIDINGS_LONGPOLL_HOLDSECONDS: 'forever' } }), (e: unknown) =>
      e instanceof ConfigError && e.file === 'env:TIDINGS_LONGPOLL_HOLDSECONDS' && e.key === 'tidings.longpoll.holdSeconds' && /expected an integer/.test(e.reason));
  });
});

describe('remote-buffer timings are reloadable', () => {
  it('an event held under the old timings goes out under the new ones after a reload', async () => {
    const shared = new MemoryCluster();
    const backends = (id: string) => memoryBackends(id, shared);
    const hour = 3_600_000;
    const a = await startNode({ backends, files: { 'websockets.properties': `${DELAY}=${hour}\n${MAX_DELAY}=${hour}\n${FREQ}=${hour}\n` } });
    const b = await startNode({ backends });
    let ws: Awaited<ReturnType<typeof connectPlainWs>> | undefined;
    try {
      const l = await login(b.url, 'alice@example.com', 'alice-pw');
      ws = await connectPlainWs(b.url, l);
      const r = await push(a.url, { context: 1, user: 3, event: 'held', data: 1 });
      assert.equal(r.status, 202);
      await waitFor('the event in a\'s remote buffer', () => a.node.remoteBuffer.stats().pending === 1);
      assert.equal(ws.frames.length, 0);

      a.write('websockets.properties', `${DELAY}=0\n${MAX_DELAY}=0\n${FREQ}=20\n`);
      const started = Date.now();
      const rr = await admin(a.url, 'POST', '/api/admin/reload');
      assert.deepEqual(rr.json.changed, [DELAY, MAX_DELAY, FREQ]);
      assert.deepEqual([a.node.config.settings[DELAY], a.node.config.settings[MAX_DELAY], a.node.config.settings[FREQ]], [0, 0, 20]);
      await waitFor('the held event at b', () => ws!.frames.length === 1, 5000, 5);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      assert.equal(ws.frames[0].name, 'held');
      assert.deepEqual(a.node.remoteBuffer.stats(), { pending: 0, dropped: 0, sentBatches: 1, sentPayloads: 1 });

      // And the new timings hold for what comes next: a fresh event goes out within a few ticks.
      await push(a.url, { context: 1, user: 3, event: 'next', data: 2 });
      await waitFor('the next event at b', () => ws!.frames.length === 2, 5000, 5);
    } finally {
      ws?.ws.close();
      await a.stop();
      await b.stop();
    }
  });
});

describe('reload by SIGHUP and the shipped config (tidings serve as a child process)', () => {
  const children: ServeProcess[] = [];
  const dirs: { remove(): void }[] = [];
  after(async () => {
    for (const c of children) await c.kill();
    for (const d of dirs) d.remove();
  });

  it('SIGHUP reloads; a broken file on SIGHUP keeps the old configuration and logs file, line and key', async () => {
    const cfg = makeConfigDir({ directory: DIRECTORY });
    dirs.push(cfg);
    const p = new ServeProcess(cfg.dir);
    children.push(p);
    const url = await p.url();
    assert.deepEqual(pick((await get(url, DELAY, 1)).json), [1000, 'default', 'built-in default']);

    cfg.write('websockets.properties', `\n${DELAY}=1234\n`);
    process.kill(p.child.pid!, 'SIGHUP');
    await waitFor('the new value after SIGHUP', async () => (await get(url, DELAY, 1)).json.value === 1234);
    assert.equal((await get(url, DELAY, 1)).json.source, 'websockets.properties:2');

    cfg.write('websockets.properties', `${DELAY}=4321\n`);
    cfg.write('contextSets/bad.yml', 'x:\n  withTags: "premium &"\n');
    const mark = p.lines.length;
    process.kill(p.child.pid!, 'SIGHUP');
    const err = await waitFor('the refused reload in the log', () => p.lines.slice(mark).find((l) => l.level === 50));
    assert.deepEqual([err.file, err.line, err.key], ['contextSets/bad.yml', 2, 'x']);
    assert.match(err.msg, /not reloaded.*contextSets\/bad\.yml:2: x: .*withTags/);
    assert.equal((await get(url, DELAY, 1)).json.value, 1234);
    assert.equal(p.exited, undefined);

    await p.kill();
    assert.equal(p.exited, 0);
  });

  it('the shipped config/ starts (port from the environment), and its example context set changes nothing for the demo users', async () => {
    const p = new ServeProcess(`${ROOT}config`, { TIDINGS_HTTP_PORT: '0', TIDINGS_CONFIG_WATCH: 'false', TIDINGS_ADMIN_TOKEN: ADMIN_TOKEN });
    children.push(p);
    const url = await p.url();
    assert.deepEqual(pick((await get(url, 'tidings.http.port', 1)).json), [0, 'server', 'env:TIDINGS_HTTP_PORT']);
    for (const user of [3, 4]) {
      assert.deepEqual(pick((await get(url, ENABLED, 1, user)).json).slice(0, 2), [true, 'default']);
      assert.deepEqual(pick((await get(url, MAX_CONN, 1, user)).json).slice(0, 2), [8, 'default']);
    }
    assert.equal(p.lines.filter((l) => l.level >= 40 && !/PLAIN/.test(l.msg)).length, 0, JSON.stringify(p.lines.filter((l) => l.level >= 40)));
    await p.kill();
    assert.equal(p.exited, 0);
  });
});

describe('watching the config directory', () => {
  it('an edited file reloads by itself (debounced), also in a contextSets/ folder made after the start; a broken edit keeps the old configuration', async () => {
    const cap = captureLog();
    const n = await startNode({ directory: DIRECTORY, properties: { 'tidings.config.watch': true }, log: cap.log });
    try {
      const reloads = () => cap.lines.filter((l) => String(l.msg).startsWith('configuration reloaded')).length;
      n.write('websockets.properties', `${DELAY}=1111\n`);
      await waitFor('the edit to be picked up', () => n.node.config.settings[DELAY] === 1111, 5000);
      assert.deepEqual(pick((await get(n.url, DELAY, 1)).json), [1111, 'server', 'websockets.properties:1']);

      // A burst of edits is one reload.
      await waitFor('the reload log line', () => reloads() === 1);
      for (let i = 0; i < 5; i++) n.write('websockets.properties', `${DELAY}=${1200 + i}\n`);
      await waitFor('the burst to be picked up', () => n.node.config.settings[DELAY] === 1204, 5000);
      assert.equal(reloads(), 2);

      n.write('contextSets/late.yml', `late:\n  withTags: legacy\n  ${MAX_CONN}: 6\n`);
      await waitFor('the new context set', async () => (await get(n.url, MAX_CONN, 3)).json.value === 6, 5000);
      // Only the watcher on the new folder sees this edit.
      n.write('contextSets/late.yml', `late:\n  withTags: legacy\n  ${MAX_CONN}: 7\n`);
      await waitFor('the edit inside the new folder', async () => (await get(n.url, MAX_CONN, 3)).json.value === 7, 5000);

      const mark = cap.lines.length;
      n.write('contextSets/late.yml', `late:\n  withTags: legacy\n  ${MAX_CONN}: none\n`);
      const err = await waitFor('the refused reload', () => cap.lines.slice(mark).find((l) => l.level === 50), 5000);
      assert.deepEqual([err.file, err.line, err.key], ['contextSets/late.yml', 3, MAX_CONN]);
      assert.equal((await get(n.url, MAX_CONN, 3)).json.value, 7);
    } finally {
      await n.stop();
    }
  });
});
