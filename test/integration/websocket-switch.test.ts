/**
 * Issue 4, the WebSocket switch: `com.openexchange.websockets.enabled` resolved for the user at every
 * WebSocket upgrade (Socket.IO's and the plain one). False → 403 TIDINGS_WEBSOCKETS_DISABLED before
 * the upgrade, while Socket.IO polling keeps working; a change by set/unset or reload applies to the
 * next upgrade within 1 s.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { ADMIN_TOKEN } from '../helpers/config-dir.js';
import { collect, connectPlainWs, connectSocketIo, login, push, startNode, type Login, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

const ENABLED = 'com.openexchange.websockets.enabled';

const DIRECTORY = `contexts:
  - id: 1
    name: example.com
    tags: [premium]
  - id: 2
    name: other.org
    tags: [legacy]
users:
  - id: 3
    context: 1
    login: alice@example.com
    password: "{PLAIN}alice-pw"
    config:
      ${ENABLED}: false
  - { id: 4, context: 1, login: bob@example.com, password: "{PLAIN}bob-pw" }
  - { id: 3, context: 2, login: carol@other.org, password: "{PLAIN}carol-pw" }
  - { id: 6, context: 1, login: erin@example.com, password: "{PLAIN}erin-pw" }
`;
const LEGACY = `no_websockets:
  withTags: legacy & !premium
  ${ENABLED}: false
`;

const PASSWORDS: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw', erin: 'erin-pw' };
const LOGINS: Record<string, string> = { alice: 'alice@example.com', bob: 'bob@example.com', carol: 'carol@other.org', erin: 'erin@example.com' };
const IDS: Record<string, { user: number; context: number }> = { alice: { user: 3, context: 1 }, bob: { user: 4, context: 1 }, carol: { user: 3, context: 2 }, erin: { user: 6, context: 1 } };

interface Refusal {
  status: number;
  body: any;
}

/** A raw Engine.IO v4 WebSocket handshake at /socket.io/ (what a websocket-only Socket.IO client sends). */
function rawSocketIoUpgrade(url: string, l: Login): Promise<{ ws: WebSocket } | Refusal> {
  const q = new URLSearchParams({ EIO: '4', transport: 'websocket', session: l.session });
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?${q}`, { headers: { cookie: l.cookie } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    ws.once('error', reject);
  });
}

/** Tries a plain WebSocket; `null` when it was accepted (and is closed again), else the refusal. */
async function plainAttempt(url: string, l: Login): Promise<Refusal | null> {
  try {
    const c = await connectPlainWs(url, l, { path: '/switch' });
    c.ws.close();
    return null;
  } catch (e) {
    const r = e as { status?: number; body?: unknown };
    if (r.status === undefined) throw e;
    return { status: r.status, body: r.body };
  }
}

async function socketIoWsAttempt(url: string, l: Login): Promise<Refusal | null> {
  const r = await rawSocketIoUpgrade(url, l);
  if ('ws' in r) {
    r.ws.close();
    return null;
  }
  return r;
}

function assertDisabled(r: Refusal | null, what: string): void {
  assert.ok(r !== null, `${what}: the upgrade was accepted`);
  assert.equal(r.status, 403, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body?.error?.code, 'TIDINGS_WEBSOCKETS_DISABLED', what);
}

/**
 * A Socket.IO client with the default transports (polling first, then an upgrade probe). Engine.IO
 * events are recorded from the start, so a probe refused before `connect` is not missed.
 */
function defaultClient(url: string, l: Login): { socket: Socket; engineEvents: string[]; connected: Promise<void> } {
  const socket = ioClient(url, { query: { session: l.session }, extraHeaders: { cookie: l.cookie }, reconnection: false, forceNew: true, timeout: 5000 });
  const engineEvents: string[] = [];
  for (const ev of ['upgrading', 'upgrade', 'upgradeError']) socket.io.engine.on(ev as 'upgrade', () => void engineEvents.push(ev));
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return { socket, engineEvents, connected };
}

async function admin(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Polls `attempt` until it gives the wanted outcome; answers how long that took from `since`. */
async function msUntil(since: number, what: string, attempt: () => Promise<Refusal | null>, accepted: boolean): Promise<number> {
  await waitFor(what, async () => ((await attempt()) === null) === accepted, 5000, 10);
  return Date.now() - since;
}

describe('the WebSocket switch (com.openexchange.websockets.enabled) at every upgrade', () => {
  let n: TestNode;
  const open: { close(): void }[] = [];
  const sessions: Record<string, Login> = {};
  before(async () => {
    n = await startNode({ directory: DIRECTORY, files: { 'contextSets/legacy.yml': LEGACY } });
    for (const who of Object.keys(LOGINS)) sessions[who] = await login(n.url, LOGINS[who], PASSWORDS[who]);
  });
  after(async () => {
    for (const s of open) s.close();
    await n.stop();
  });

  for (const [who, how] of [['alice', 'her own value in directory.yml'], ['carol', 'a context set on her context']] as const) {
    describe(`${who}: switched off by ${how}`, () => {
      it('the config API says so', async () => {
        const r = await admin(n.url, 'GET', `/api/admin/config?key=${ENABLED}&context=${IDS[who].context}&user=${IDS[who].user}`);
        assert.equal(r.json.value, false);
        assert.equal(r.json.scope, who === 'alice' ? 'user' : 'contextSets');
      });

      it('a plain WebSocket is refused with 403 TIDINGS_WEBSOCKETS_DISABLED before the upgrade', async () => {
        assertDisabled(await plainAttempt(n.url, sessions[who]), 'plain WebSocket');
      });

      it('a Socket.IO WebSocket handshake is refused with 403 TIDINGS_WEBSOCKETS_DISABLED', async () => {
        assertDisabled(await socketIoWsAttempt(n.url, sessions[who]), 'Socket.IO websocket transport');
      });

      it('a websocket-only Socket.IO client gets connect_error carrying the 403', async () => {
        await assert.rejects(connectSocketIo(n.url, sessions[who], { transports: ['websocket'] }), (e: any) => {
          assert.equal(e.type, 'TransportError');
          assert.match(String(e.description?.message ?? e.description), /Unexpected server response: 403/);
          return true;
        });
      });

      it('a default Socket.IO client connects over polling, is refused the upgrade, stays on polling and receives events', async () => {
        const c = defaultClient(n.url, sessions[who]);
        open.push(c.socket);
        await c.connected;
        const got = collect(c.socket, 'marker');
        await waitFor('the refused upgrade probe', () => c.engineEvents.includes('upgradeError'));
        const r = await push(n.url, { context: IDS[who].context, user: IDS[who].user, event: 'marker', data: { n: 1 } });
        assert.equal(r.status, 202);
        await waitFor('the marker event over polling', () => got.length === 1);
        assert.deepEqual(got[0], [{ n: 1 }, r.json.id]);
        assert.equal(c.socket.io.engine.transport.name, 'polling');
        assert.ok(!c.engineEvents.includes('upgrade'), c.engineEvents.join(','));
        // Still on polling for the next event too.
        await push(n.url, { context: IDS[who].context, user: IDS[who].user, event: 'marker', data: { n: 2 } });
        await waitFor('the second marker', () => got.length === 2);
        assert.equal(c.socket.io.engine.transport.name, 'polling');
        c.socket.close();
      });
    });
  }

  it('users with the default are not affected: bob upgrades on every way in', async () => {
    assert.equal(await plainAttempt(n.url, sessions.bob), null);
    assert.equal(await socketIoWsAttempt(n.url, sessions.bob), null);
    const c = defaultClient(n.url, sessions.bob);
    open.push(c.socket);
    await c.connected;
    await waitFor('the upgrade to websocket', () => c.socket.io.engine.transport.name === 'websocket');
    c.socket.close();
  });

  it('set/unset through the admin API flips the switch for the next upgrade within 1 s, without a restart', async () => {
    const erin = sessions.erin;
    assert.equal(await plainAttempt(n.url, erin), null);
    // An open WebSocket is not cut by the switch; it applies at the next upgrade.
    const kept = await connectPlainWs(n.url, erin, { path: '/kept' });
    open.push(kept.ws);

    const set = await admin(n.url, 'PUT', '/api/admin/config', { key: ENABLED, value: false, context: 1, user: 6 });
    assert.equal(set.status, 200, JSON.stringify(set.json));
    const offAt = Date.now();
    const refused = await msUntil(offAt, 'the refusal after set', () => plainAttempt(n.url, erin), false);
    assert.ok(refused < 1000, `refused after ${refused} ms`);
    assertDisabled(await plainAttempt(n.url, erin), 'plain WebSocket after set');
    assertDisabled(await socketIoWsAttempt(n.url, erin), 'Socket.IO after set');

    const unset = await admin(n.url, 'DELETE', `/api/admin/config?key=${ENABLED}&context=1&user=6`);
    assert.equal(unset.json.removed, true);
    const onAt = Date.now();
    const plainMs = await msUntil(onAt, 'a plain upgrade after unset', () => plainAttempt(n.url, erin), true);
    const sioMs = await msUntil(onAt, 'a Socket.IO upgrade after unset', () => socketIoWsAttempt(n.url, erin), true);
    assert.ok(plainMs < 1000 && sioMs < 1000, `accepted after ${plainMs} / ${sioMs} ms`);

    const r = await push(n.url, { context: 1, user: 6, event: 'still-here', data: 1, pathFilter: '/websockets/kept' });
    assert.equal(r.status, 202);
    await waitFor('the event on the connection opened before the switch', () => kept.frames.length === 1);
  });

  it('a context-scope run-time value switches every user of the context; a user value still wins over it', async () => {
    assert.equal((await admin(n.url, 'PUT', '/api/admin/config', { key: ENABLED, value: 'false', context: 1 })).status, 200);
    try {
      assertDisabled(await plainAttempt(n.url, sessions.bob), 'bob after the context value');
      assertDisabled(await socketIoWsAttempt(n.url, sessions.erin), 'erin after the context value');
      assert.equal((await admin(n.url, 'PUT', '/api/admin/config', { key: ENABLED, value: 'true', context: 1, user: 4 })).status, 200);
      const t = Date.now();
      const ms = await msUntil(t, 'bob\'s own value to win', () => plainAttempt(n.url, sessions.bob), true);
      assert.ok(ms < 1000, `${ms} ms`);
    } finally {
      await admin(n.url, 'DELETE', `/api/admin/config?key=${ENABLED}&context=1`);
      await admin(n.url, 'DELETE', `/api/admin/config?key=${ENABLED}&context=1&user=4`);
    }
    assert.equal(await plainAttempt(n.url, sessions.bob), null);
  });

  it('a reload of edited files flips the switch for the next upgrade within 1 s (user value and context set)', async () => {
    // alice: remove her own false; carol: the context set no longer matches.
    n.write('directory.yml', DIRECTORY.replace(`    config:\n      ${ENABLED}: false\n`, ''));
    n.write('contextSets/legacy.yml', LEGACY.replace('legacy & !premium', 'legacy & premium'));
    const r = await admin(n.url, 'POST', '/api/admin/reload');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const at = Date.now();
    for (const who of ['alice', 'carol']) {
      const ms = await msUntil(at, `${who}'s upgrade after the reload`, () => plainAttempt(n.url, sessions[who]), true);
      assert.ok(ms < 1000, `${who}: ${ms} ms`);
      assert.equal(await socketIoWsAttempt(n.url, sessions[who]), null);
    }
    // And back: both refused again at the next upgrade.
    n.write('directory.yml', DIRECTORY);
    n.write('contextSets/legacy.yml', LEGACY);
    assert.equal((await admin(n.url, 'POST', '/api/admin/reload')).status, 200);
    for (const who of ['alice', 'carol']) {
      assertDisabled(await plainAttempt(n.url, sessions[who]), `${who} after the second reload`);
      assertDisabled(await socketIoWsAttempt(n.url, sessions[who]), `${who} after the second reload`);
    }
  });
});

describe('the WebSocket switch with a watched config directory', () => {
  it('an edit to websockets.properties switches every user within 1 s of the write, and back', async () => {
    const n = await startNode({ properties: { 'tidings.config.watch': true } });
    const open: { close(): void }[] = [];
    try {
      const alice = await login(n.url, 'alice@example.com', 'alice-pw');
      assert.equal(await plainAttempt(n.url, alice), null);

      n.write('websockets.properties', `${ENABLED}=false\n`);
      const offMs = await msUntil(Date.now(), 'the refusal after the edit', () => plainAttempt(n.url, alice), false);
      assert.ok(offMs < 1000, `refused ${offMs} ms after the write`);
      assertDisabled(await socketIoWsAttempt(n.url, alice), 'Socket.IO after the edit');
      // Socket.IO over polling keeps working meanwhile.
      const c = defaultClient(n.url, alice);
      open.push(c.socket);
      await c.connected;
      const got = collect(c.socket, 'marker');
      await waitFor('the refused upgrade probe', () => c.engineEvents.includes('upgradeError'));
      await push(n.url, { context: 1, user: 3, event: 'marker', data: 'p' });
      await waitFor('the marker over polling', () => got.length === 1);
      assert.equal(c.socket.io.engine.transport.name, 'polling');

      n.write('websockets.properties', `${ENABLED}=true\n`);
      const onMs = await msUntil(Date.now(), 'an upgrade after the edit back', () => plainAttempt(n.url, alice), true);
      assert.ok(onMs < 1000, `accepted ${onMs} ms after the write`);
      assert.equal(await socketIoWsAttempt(n.url, alice), null);
    } finally {
      for (const s of open) s.close();
      await n.stop();
    }
  });
});
