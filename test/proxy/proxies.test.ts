import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { adminSet, adminUnset, startCluster, type Cluster } from '../cluster/fixture.js';
import { ADMIN_TOKEN } from '../helpers/config-dir.js';
import { httpFrom } from '../helpers/http-from.js';
import { openSse, poll } from '../helpers/history-clients.js';
import { collect, connectPlainWs, connectSocketIo, push, tryUpgrade, type Login } from '../helpers/node.js';
import { startProxy, type ProxyKind, type RunningProxy } from '../helpers/proxies.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The shipped deploy/ configs, run by the real Debian nginx, Apache and HAProxy (only addresses, ports
 * and the idle timeout substituted), round robin in front of three `tidings serve` processes on one
 * redis-server. The proxies' idle timeout is cut to IDLE_S so that the keepalives must carry a socket.
 */
const IDLE_S = 3;
const KINDS: ProxyKind[] = ['nginx', 'apache', 'haproxy'];
/** One user per proxy, so that the per-user connection cap and the events of one never touch another. */
const USERS: Record<ProxyKind, { login: string; password: string; id: number; context: number }> = {
  nginx: { login: 'alice@example.com', password: 'alice-pw', id: 3, context: 1 },
  apache: { login: 'bob@example.com', password: 'bob-pw', id: 4, context: 1 },
  haproxy: { login: 'erin@example.com', password: 'erin-pw', id: 6, context: 1 },
};

async function loginFrom(url: string, who: { login: string; password: string }, localAddress?: string, headers: Record<string, string> = {}): Promise<Login> {
  const r = await httpFrom(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(who), localAddress });
  if (r.status !== 200) throw new Error(`login through ${url}: ${r.status} ${r.text}`);
  const cookie = String(([] as string[]).concat(r.headers['set-cookie'] ?? [])[0] ?? '').split(';')[0];
  return { session: r.json.session, cookie, user: r.json.user, context: r.json.context };
}


/** A Socket.IO event's arguments without the last one, its offset (README, "Resume"), which must be there. */
function withoutOffset(args: unknown[]): unknown[] {
  assert.match(String(args[args.length - 1]), /^e[0-9a-z]+-\d+$/);
  return args.slice(0, -1);
}

/** Held long-polls or SSE streams open on the cluster's nodes right now, by their connection gauge. */
async function heldOn(cluster: Cluster, transport: 'longpoll' | 'sse'): Promise<number> {
  let n = 0;
  for (const url of cluster.urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    n += Number(new RegExp(`^tidings_connections\\{transport="${transport}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  }
  return n;
}

describe('three nodes behind the shipped nginx, Apache and HAProxy configs', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  const proxies = new Map<ProxyKind, RunningProxy>();

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, {
      'tidings.http.trustedProxies': '127.0.0.1',
      'tidings.session.ipCheck': true,
      // below the proxies' cut idle timeout
      'tidings.websocket.pingIntervalMs': 1000,
      'tidings.socketio.pingIntervalMs': 1000,
      'tidings.socketio.pingTimeoutMs': 1000,
      'tidings.sse.heartbeatMs': 1000,
      'tidings.longpoll.holdSeconds': 2,
      'com.openexchange.websockets.grizzly.remote.delayDuration': 0,
    }, 'px');
    const upstreams = cluster.urls.map((u) => new URL(u).host);
    for (const kind of KINDS) proxies.set(kind, await startProxy(kind, { upstreams, idleTimeoutSeconds: IDLE_S }));
  });

  after(async () => {
    for (const p of proxies.values()) await p.stop();
    await cluster?.stop();
    await redis?.stop();
  });

  for (const kind of KINDS) {
    describe(kind, () => {
      const user = USERS[kind];
      const proxy = () => proxies.get(kind)!.url;
      const event = (name: string, data: unknown) => ({ context: user.context, user: user.id, event: name, data });
      // A back end publishes to one node: events published on different nodes at once have no order
      // between them, and the checks below rely on order to prove "once" (a later marker came).
      const backend = () => cluster!.urls[0];

      it('balances over all three nodes', async () => {
        const seen = new Set<string>();
        await waitFor('requests answered by each of the three nodes', async () => {
          const r = await httpFrom(`${proxy()}/api/admin/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
          if (r.status === 200) seen.add(r.json.nodeId);
          return seen.size === 3;
        }, 10_000, 10);
        assert.deepEqual([...seen].sort(), [...cluster!.ids].sort());
      });

      it('login, then a plain WebSocket gets an event, once', async () => {
        const l = await loginFrom(proxy(), user);
        const c = await connectPlainWs(proxy(), l, { path: `/${kind}` });
        try {
          const p = await push(backend(), event('x', kind));
          const m = await push(backend(), event('marker', 0));
          await waitFor('the marker', () => c.frames.some((f) => f.id === m.json.id), 5000);
          assert.deepEqual(c.frames.map((f) => f.id), [p.json.id, m.json.id]);
          assert.deepEqual(c.frames[0], { name: 'x', args: [kind], namespace: '/', id: p.json.id });
        } finally {
          c.ws.close();
        }
      });

      it('Socket.IO over WebSocket gets every event once', async () => {
        const l = await loginFrom(proxy(), user);
        const s = await connectSocketIo(proxy(), l, { transports: ['websocket'] });
        try {
          const got = collect(s, 'sio');
          const marks = collect(s, 'marker');
          for (let i = 0; i < 3; i++) assert.equal((await push(backend(), event('sio', i))).status, 202);
          await push(backend(), event('marker', 0));
          await waitFor('the marker', () => marks.length === 1, 5000);
          assert.deepEqual(got.map(withoutOffset), [[0], [1], [2]]);
          assert.equal(s.io.engine.transport.name, 'websocket');
        } finally {
          s.close();
        }
      });

      /** Every event of `n` arrives once and in order on a Socket.IO client made by `connect`, however the balancer spreads its requests. */
      async function everyEventOnce(s: Awaited<ReturnType<typeof connectSocketIo>>, n = 6): Promise<void> {
        const got = collect(s, 'ev');
        const marks = collect(s, 'marker');
        for (let i = 0; i < n; i++) assert.equal((await push(backend(), event('ev', i))).status, 202);
        await push(backend(), event('marker', 0));
        await waitFor('the marker', () => marks.length === 1, 10_000);
        assert.deepEqual(got.map(withoutOffset), Array.from({ length: n }, (_, i) => [i]));
      }

      it('a polling-only Socket.IO client works round robin, without affinity: every event once', async () => {
        const l = await loginFrom(proxy(), user);
        const s = await connectSocketIo(proxy(), l, { transports: ['polling'] });
        try {
          await everyEventOnce(s);
          assert.equal(s.io.engine.transport.name, 'polling');
          assert.equal(s.connected, true);
        } finally {
          s.close();
        }
      });

      it('the default Socket.IO client (polling, then the upgrade) works round robin: every event once', async () => {
        const l = await loginFrom(proxy(), user);
        const s = await connectSocketIo(proxy(), l, {});
        try {
          await waitFor('the upgrade to websocket', () => s.io.engine.transport.name === 'websocket', 10_000);
          await everyEventOnce(s);
        } finally {
          s.close();
        }
      });

      it('a user with WebSockets switched off stays on polling round robin and gets every event once', async () => {
        await adminSet(cluster!.urls[0], { key: 'com.openexchange.websockets.enabled', value: false, context: user.context, user: user.id });
        try {
          const l = await loginFrom(proxy(), user);
          const s = await connectSocketIo(proxy(), l, {});
          const upgraded: string[] = [];
          s.io.engine.on('upgrade', (t: { name: string }) => upgraded.push(t.name));
          try {
            await everyEventOnce(s);
            assert.equal(s.io.engine.transport.name, 'polling');
            assert.deepEqual(upgraded, []);
          } finally {
            s.close();
          }
        } finally {
          await adminUnset(cluster!.urls[0], 'com.openexchange.websockets.enabled', user.context, user.id);
        }
      });

      it('a refusal of the gate reaches the client as the JSON error', async () => {
        const ws = await tryUpgrade(proxy(), { session: 'no-such-session', cookie: 'tidings-secret=x', user: 0, context: 0 });
        assert.deepEqual(ws, { status: 401, body: { error: { code: 'TIDINGS_SESSION_UNKNOWN', message: 'No such session, or it has expired' } } });
        const poll = await fetch(`${proxy()}/socket.io/?EIO=4&transport=polling`);
        assert.equal(poll.status, 401);
        assert.match(poll.headers.get('content-type') ?? '', /^application\/json/);
        assert.deepEqual(await poll.json(), { error: { code: 'TIDINGS_SESSION_MISSING', message: "Missing parameter 'session'" } });
      });

      it('the browser\'s Host reaches the node: a same-origin socket is admitted, another origin is refused', async () => {
        const l = await loginFrom(proxy(), user);
        assert.equal(await tryUpgrade(proxy(), l, { headers: { origin: proxy() } }), 'open');
        const other = await tryUpgrade(proxy(), l, { headers: { origin: 'https://elsewhere.example' } });
        assert.equal(typeof other === 'object' && other.body.error.code, 'TIDINGS_ORIGIN_FORBIDDEN');
      });

      it('a long-poll held through the proxy gets an event published meanwhile; an empty one is 304 with its ETag', async () => {
        const l = await loginFrom(proxy(), user);
        const p0 = await push(backend(), event('lp-before', 0));
        const held = poll(proxy(), l, { since: p0.json.id, path: `/${kind}/poll` });
        // Held on whichever node the proxy chose: that node counts it.
        await waitFor('the poll to be held on a node', async () => (await heldOn(cluster!, 'longpoll')) >= 1);
        const p1 = await push(backend(), event('lp', kind));
        const r = await held;
        assert.equal(r.status, 200);
        assert.deepEqual(r.events.map((e) => [e.name, e.args[0], e.id]), [['lp', kind, p1.json.id]]);
        assert.equal(r.etag, p1.json.id);
        const empty = await poll(proxy(), l, { ifNoneMatch: `"${p1.json.id}"`, path: `/${kind}/poll` });
        assert.deepEqual([empty.status, empty.etag], [304, p1.json.id]);
      });

      it('SSE through the proxy is not buffered: the first event arrives before a second is published', async () => {
        const l = await loginFrom(proxy(), user);
        const sse = await openSse(proxy(), l, { path: `/${kind}/sse` });
        try {
          assert.equal(sse.status, 200);
          assert.match(sse.headers.get('content-type') ?? '', /^text\/event-stream/);
          const p1 = await push(backend(), event('sse', 1));
          // Nothing else is sent meanwhile: a buffering proxy would hold this one back.
          await waitFor('the first event through the proxy', () => sse.messages.some((m) => m.id === p1.json.id), 5000);
          const p2 = await push(backend(), event('sse', 2));
          await waitFor('the second event', () => sse.messages.some((m) => m.id === p2.json.id), 5000);
          assert.deepEqual(sse.messages.map((m) => [m.id, m.data.args[0]]), [[p1.json.id, 1], [p2.json.id, 2]]);
        } finally {
          sse.close();
        }
      });

      it(`an idle plain WebSocket outlives the proxy's ${IDLE_S} s idle timeout and still gets the next event`, async () => {
        const l = await loginFrom(proxy(), user);
        const c = await connectPlainWs(proxy(), l, { path: `/${kind}/idle` });
        const start = Date.now();
        const pings: number[] = [];
        let closed: number | null = null;
        c.ws.on('ping', () => pings.push(Date.now()));
        c.ws.once('close', (code) => (closed = code));
        try {
          // The client only answers pings; nothing else crosses the tunnel for 2.5 idle timeouts.
          await waitFor(`pings for ${2.5 * IDLE_S} s`, () => {
            if (closed !== null) throw new Error(`closed with ${closed} after ${Date.now() - start} ms`);
            return pings.length > 0 && pings[pings.length - 1] - start > 2500 * IDLE_S;
          }, 6000 * IDLE_S, 100);
          assert.equal(closed, null);
          const p = await push(proxy(), event('after-idle', 1));
          await waitFor('the event after the idle time', () => c.frames.some((f) => f.id === p.json.id), 5000);
        } finally {
          c.ws.close();
        }
      });

      it('the real client IP: with ipCheck on, the login\'s own address is admitted and a forged X-Forwarded-For is refused', async () => {
        // the victim is 127.0.0.2, the attacker 127.0.0.3 with the victim's session, cookie and claimed address
        const l = await loginFrom(proxy(), user, '127.0.0.2');
        assert.equal(await tryUpgrade(proxy(), l, { localAddress: '127.0.0.2' }), 'open');
        const forged = await tryUpgrade(proxy(), l, { localAddress: '127.0.0.3', headers: { 'x-forwarded-for': '127.0.0.2' } });
        assert.deepEqual(forged, { status: 403, body: { error: { code: 'TIDINGS_IP_MISMATCH', message: 'The client IP does not match the session' } } });
      });
    });
  }
});

/**
 * The control of the idle test above: the same shipped configs with the same cut idle timeout, in
 * front of a node whose WebSocket ping is slower than that timeout. Each proxy cuts the idle socket,
 * so the keepalive is what carries it there, not a substitution that failed to take effect.
 */
describe('control: with a WebSocket ping slower than the proxy timeout, each proxy cuts an idle socket', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  const proxies: RunningProxy[] = [];

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, { 'tidings.websocket.pingIntervalMs': 60_000 }, 'pc');
    const upstreams = cluster.urls.map((u) => new URL(u).host);
    for (const kind of KINDS) proxies.push(await startProxy(kind, { upstreams, idleTimeoutSeconds: IDLE_S }));
  });
  after(async () => {
    for (const p of proxies) await p.stop();
    await cluster?.stop();
    await redis?.stop();
  });

  it(`nginx, Apache and HAProxy close it after about ${IDLE_S} s (1006)`, async () => {
    const results = await Promise.all(proxies.map(async (p) => {
      const l = await loginFrom(p.url, USERS[p.kind]);
      const c = await connectPlainWs(p.url, l, { path: '/control' });
      const start = Date.now();
      let closed: { code: number; after: number } | null = null;
      c.ws.once('close', (code) => (closed = { code, after: Date.now() - start }));
      try {
        const r = await waitFor(`${p.kind} to cut the idle socket`, () => closed, 4000 * IDLE_S, 100);
        return { kind: p.kind, code: r.code, cutInTime: r.after >= 800 * IDLE_S && r.after < 3000 * IDLE_S };
      } finally {
        c.ws.terminate();
      }
    }));
    assert.deepEqual(results, KINDS.map((kind) => ({ kind, code: 1006, cutInTime: true })));
  });
});
