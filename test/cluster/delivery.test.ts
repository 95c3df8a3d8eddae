import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectPlainWs, connectSocketIo, login, push } from '../helpers/node.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { adminGet, adminReload, adminSet, adminUnset, batchesReceived, connectTimed, duplicates, idsOf, members, startCluster, type Cluster } from './fixture.js';

// Small remote-buffer timings keep the timing checks fast (docs/architecture.md, the remote buffer).
const DELAY = 200;
const MAX_DELAY = 600;
const TIMER = 100;
// Loopback, but three nodes, Redis and the test share two cores with whatever else runs.
const MARGIN = 500;
const SWITCH = 'com.openexchange.websockets.enabled';

describe('cluster delivery: three tidings processes on a standalone redis-server', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  const open: { close(): void }[] = [];
  let u1: string, u2: string, u3: string;

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, {
      'com.openexchange.websockets.grizzly.remote.delayDuration': DELAY,
      'com.openexchange.websockets.grizzly.remote.maxDelayDuration': MAX_DELAY,
      'com.openexchange.websockets.grizzly.remote.timerFrequency': TIMER,
      // Files change only through an explicit reload here, so the reload case proves the broadcast.
      'tidings.config.watch': false,
    });
    [u1, u2, u3] = cluster.urls;
  });

  after(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
    await redis?.stop();
  });

  it('GET /api/admin/status on every node lists all three members', async () => {
    for (const url of cluster!.urls) assert.deepEqual((await members(url)).sort(), [...cluster!.ids].sort());
  });

  it('an event published on node 1 reaches the user\'s connections on nodes 2 and 3 exactly once, after delayDuration; node 1\'s own socket at once', async () => {
    const l = await login(u1, 'alice@example.com', 'alice-pw');
    const local = await connectTimed(u1, l, { path: '/one' });
    const r2 = await connectTimed(u2, l, { path: '/two' });
    const r3 = await connectTimed(u3, l, { path: '/three' });
    open.push(local.ws, r2.ws, r3.ws);

    const t0 = Date.now();
    const p = await push(u1, { context: 1, user: 3, event: 'ev', data: 'first' });
    assert.equal(p.status, 202);
    await waitFor('the event on all three connections', () => local.frames.length >= 1 && r2.frames.length >= 1 && r3.frames.length >= 1, 5000, 5);
    assert.equal(local.frames[0].id, p.json.id);
    assert.ok(local.at[0] - t0 < DELAY, `local delivery took ${local.at[0] - t0} ms, expected well before ${DELAY} ms`);
    for (const c of [r2, r3]) {
      assert.deepEqual(c.frames[0], { name: 'ev', args: ['first'], namespace: '/', id: p.json.id });
      const took = c.at[0] - t0;
      assert.ok(took >= DELAY, `remote delivery after ${took} ms, before delayDuration ${DELAY}`);
      assert.ok(took <= MAX_DELAY + TIMER + MARGIN, `remote delivery after ${took} ms`);
    }

    // Exactly once: a later marker arrives, and nothing else came before it.
    const m = await push(u1, { context: 1, user: 3, event: 'marker', data: 1 });
    await waitFor('the marker on all connections', () => [local, r2, r3].every((c) => idsOf(c).includes(m.json.id)), 5000);
    for (const c of [local, r2, r3]) assert.deepEqual(idsOf(c), [p.json.id, m.json.id]);
  });

  it('a steady stream re-arms the delay but each remote delivery is capped at maxDelayDuration + timerFrequency', async () => {
    const l = await login(u1, 'alice@example.com', 'alice-pw');
    const r2 = await connectTimed(u2, l, { path: '/stream' });
    open.push(r2.ws);
    const sentAt = new Map<string, number>();
    // One event every 100 ms (< delayDuration) for 1.5 s: without the cap nothing would be due until the stream stops.
    const streamEnd = Date.now() + 1500;
    const ids: string[] = [];
    while (Date.now() < streamEnd) {
      const t = Date.now();
      const p = await push(u1, { context: 1, user: 3, event: 'tick', data: ids.length, pathFilter: '/websockets/stream' });
      sentAt.set(p.json.id, t);
      ids.push(p.json.id);
      await new Promise((res) => setTimeout(res, 100));
    }
    await waitFor('every streamed event on node 2', () => ids.every((id) => idsOf(r2).includes(id)), 5000);
    assert.deepEqual(idsOf(r2), ids, 'each exactly once, in publish order');
    for (let i = 0; i < r2.frames.length; i++) {
      const took = r2.at[i] - sentAt.get(r2.frames[i].id)!;
      assert.ok(took <= MAX_DELAY + TIMER + MARGIN, `event ${i} arrived ${took} ms after its publish`);
    }
    assert.ok(r2.at[0] - sentAt.get(ids[0])! >= DELAY, 'not before delayDuration');
  });

  it('only nodes holding the user\'s connections receive a batch', async () => {
    const l = await login(u2, 'bob@example.com', 'bob-pw');
    const c2 = await connectTimed(u2, l, { path: '/only' });
    open.push(c2.ws);
    const before2 = await batchesReceived(u2);
    const before3 = await batchesReceived(u3);
    const p = await push(u1, { context: 1, user: 4, event: 'only', data: 1 });
    await waitFor('the event on node 2', () => idsOf(c2).includes(p.json.id), 5000);
    // Give node 3 more than the whole buffer window to show a stray batch, bounded by a deadline on node 2's side.
    const m = await push(u1, { context: 1, user: 4, event: 'only-marker', data: 2 });
    await waitFor('the marker on node 2', () => idsOf(c2).includes(m.json.id), 5000);
    assert.equal(await batchesReceived(u2), before2 + 2);
    assert.equal(await batchesReceived(u3), before3, 'node 3 holds no connection of bob and must get no batch');
    assert.deepEqual(idsOf(c2), [p.json.id, m.json.id]);
    c2.ws.close();
  });

  it('sourceToken suppresses the echo to that connection on a remote node only', async () => {
    const l = await login(u3, 'bob@example.com', 'bob-pw');
    const origin = await connectTimed(u3, l, { path: '/echo', connection: 'conn-origin' });
    const other = await connectTimed(u2, l, { path: '/echo', connection: 'conn-other' });
    open.push(origin.ws, other.ws);
    const p = await push(u1, { context: 1, user: 4, event: 'echo', data: 1, sourceToken: 'conn-origin' });
    const m = await push(u1, { context: 1, user: 4, event: 'echo-marker', data: 2 });
    await waitFor('the marker on both', () => idsOf(origin).includes(m.json.id) && idsOf(other).includes(m.json.id), 5000);
    assert.deepEqual(idsOf(origin), [m.json.id], 'the originating connection must not get its own event');
    assert.deepEqual(idsOf(other), [p.json.id, m.json.id]);
    origin.ws.close();
    other.ws.close();
  });

  it('an idempotency key published on two different nodes is delivered once', async () => {
    const l = await login(u1, 'carol@other.org', 'carol-pw');
    const c2 = await connectTimed(u2, l, { path: '/idem' });
    const c3 = await connectTimed(u3, l, { path: '/idem' });
    open.push(c2.ws, c3.ws);
    const key = `k-${Date.now()}`;
    const a = await push(u1, { context: 2, user: 3, event: 'idem', data: 'a', key });
    const b = await push(u3, { context: 2, user: 3, event: 'idem', data: 'b', key });
    assert.equal(a.status, 202);
    assert.ok(b.status === 202 || b.status === 200, `second publish answered ${b.status}`);
    const m = await push(u1, { context: 2, user: 3, event: 'idem-marker', data: 1 });
    await waitFor('the marker', () => idsOf(c2).includes(m.json.id) && idsOf(c3).includes(m.json.id), 5000);
    for (const c of [c2, c3]) {
      assert.deepEqual(c.frames.filter((f) => f.name === 'idem').map((f) => f.args[0]), ['a']);
      assert.deepEqual(duplicates(idsOf(c)), []);
    }
    c2.ws.close();
    c3.ws.close();
  });

  it('the per-user connection cap counts across the cluster', async () => {
    // The cap for erin only (a cluster-wide 2 would collide with the other cases), set on node 1.
    await adminSet(u1, { key: 'tidings.connections.maxPerUser', value: 2, context: 1, user: 6 });
    await waitFor('node 3 to resolve erin\'s cap to 2', async () => (await adminGet(u3, 'tidings.connections.maxPerUser', 1, 6)).value === 2, 5000);
    await waitFor('node 2 to resolve erin\'s cap to 2', async () => (await adminGet(u2, 'tidings.connections.maxPerUser', 1, 6)).value === 2, 5000);
    const l = await login(u1, 'erin@example.com', 'erin-pw');
    const a = await connectPlainWs(u1, l, { path: '/cap' });
    open.push(a.ws);
    const s = await connectSocketIo(u2, l, { transports: ['websocket'] });
    open.push(s);
    const err = await connectPlainWs(u3, l, { path: '/cap' }).then(
      (c) => {
        open.push(c.ws);
        return null;
      },
      (e: { status?: number; body?: any }) => e,
    );
    assert.ok(err, 'the third connection must be refused');
    assert.equal(err.status, 429);
    assert.equal(err.body?.error?.code, 'TIDINGS_TOO_MANY_CONNECTIONS');
    // Freeing one slot on node 1 lets node 3 admit again.
    a.ws.close();
    const c = await waitFor('a slot to free up', () => connectPlainWs(u3, l, { path: '/cap' }).catch(() => null), 5000, 50);
    open.push(c.ws);
    s.close();
    c.ws.close();
  });

  it('log in on A, connect on B, log out on C: the socket on B closes within 1 s', async () => {
    const l = await login(u1, 'bob@example.com', 'bob-pw');
    const c = await connectPlainWs(u2, l, { path: '/logout' });
    const sio = await connectSocketIo(u2, l, { transports: ['websocket'] });
    open.push(c.ws, sio);
    const wsClosed = new Promise<number>((res) => c.ws.once('close', () => res(Date.now())));
    const sioClosed = new Promise<number>((res) => sio.once('disconnect', () => res(Date.now())));
    const t0 = Date.now();
    const r = await fetch(`${u3}/api/logout?session=${encodeURIComponent(l.session)}`, { method: 'POST', headers: { cookie: l.cookie } });
    assert.ok(r.status >= 200 && r.status < 300, `logout answered ${r.status}`);
    const timeout = new Promise<number>((_, rej) => setTimeout(() => rej(new Error('sockets on node 2 not closed within 1.5 s')), 1500));
    const [tw, ts] = (await Promise.race([Promise.all([wsClosed, sioClosed]), timeout])) as [number, number];
    assert.ok(tw - t0 <= 1000, `plain WebSocket closed after ${tw - t0} ms`);
    assert.ok(ts - t0 <= 1000, `Socket.IO socket closed after ${ts - t0} ms`);
  });

  it('config set, unset and reload on one node reach the next upgrade on another node within 1 s', async () => {
    const l = await login(u2, 'carol@other.org', 'carol-pw');
    const attempt = () => connectPlainWs(u3, l, { path: '/switch' }).then((c) => (c.ws.close(), null), (e: { status?: number; body?: any }) => e);
    const assertRefused = (err: { status?: number; body?: any } | null, what: string) => {
      assert.ok(err, `${what}: the upgrade was admitted`);
      assert.equal(err.status, 403);
      assert.equal(err.body?.error?.code, 'TIDINGS_WEBSOCKETS_DISABLED');
    };
    const within1s = (t0: number, what: string) => {
      const took = Date.now() - t0;
      assert.ok(took <= 1000, `${what} only after ${took} ms`);
    };
    assert.equal(await attempt(), null, 'the upgrade on node 3 works before any change');

    // set on node 1 → refused on node 3.
    let t0 = Date.now();
    await adminSet(u1, { key: SWITCH, value: false, context: 2, user: 3 });
    assertRefused(await waitFor('node 3 to refuse the upgrade', attempt, 2000, 20), 'after set');
    within1s(t0, 'refused');
    // Long-polling still works on node 3 (only the WebSocket upgrade is refused).
    const poll = await connectSocketIo(u3, l, { transports: ['polling'] });
    poll.close();

    // unset on node 2 → admitted on node 3 again.
    t0 = Date.now();
    assert.equal((await adminUnset(u2, SWITCH, 2, 3)).removed, true);
    await waitFor('node 3 to admit the upgrade again', async () => (await attempt()) === null, 2000, 20);
    within1s(t0, 'admitted');

    // A file edited on node 3 (its watcher is off) takes effect when node 1 is asked to reload.
    cluster!.dirs[2].write('websockets.properties', `${SWITCH}=false\n`);
    assert.equal(await attempt(), null, 'an edit alone changes nothing without a reload');
    t0 = Date.now();
    await adminReload(u1);
    assertRefused(await waitFor('node 3 to refuse after the cluster reload', attempt, 2000, 20), 'after reload');
    within1s(t0, 'refused');
    cluster!.dirs[2].write('websockets.properties', '');
    await adminReload(u2);
    await waitFor('node 3 to admit after the file is restored', async () => (await attempt()) === null, 2000, 20);
  });
});
