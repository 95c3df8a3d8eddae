import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { login, push } from '../helpers/node.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { connectTimed, duplicates, idsOf, isReady, members, startCluster, startStream, type Cluster } from './fixture.js';

/** Node ids in the registry's user → nodes entry, whatever Redis type it is stored as. */
async function registryNodesFor(port: number, user: string): Promise<string[]> {
  const key = `tidings:{u:${user}}:n`;
  const type = await redisCommand(port, 'TYPE', key);
  if (type === 'hash') return (await redisCommand(port, 'HKEYS', key)) as string[];
  if (type === 'set') return (await redisCommand(port, 'SMEMBERS', key)) as string[];
  if (type === 'zset') return (await redisCommand(port, 'ZRANGE', key, 0, -1)) as string[];
  if (type === 'none') return [];
  throw new Error(`unexpected type ${String(type)} of ${key}`);
}

describe('a node killed with SIGKILL drops out of the registry (default heartbeat and liveness)', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  const open: { close(): void }[] = [];

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, { 'com.openexchange.websockets.grizzly.remote.delayDuration': 0 }, 'k');
  });
  after(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
    await redis?.stop();
  });

  it('within 15 s the dead node is gone from status, from the user\'s nodes, and survivors keep delivering', async () => {
    const [u1, u2, u3] = cluster!.urls;
    const l = await login(u1, 'alice@example.com', 'alice-pw');
    const c2 = await connectTimed(u2, l, { path: '/k' });
    const c3 = await connectTimed(u3, l, { path: '/k' });
    open.push(c2.ws, c3.ws);
    const dead = cluster!.ids[2];
    assert.ok((await registryNodesFor(redis!.port, '3@1')).includes(dead), 'node 3 holds alice before the kill');

    const t0 = Date.now();
    cluster!.nodes[2].kill('SIGKILL');
    await cluster!.nodes[2].exited;
    await waitFor('node 3 to drop out of status on nodes 1 and 2', async () => {
      const [m1, m2] = await Promise.all([members(u1), members(u2)]);
      return !m1.includes(dead) && !m2.includes(dead);
    }, 15_000, 100);
    await waitFor('node 3 to drop out of alice\'s nodes', async () => !(await registryNodesFor(redis!.port, '3@1')).includes(dead), Math.max(0, 15_000 - (Date.now() - t0)), 100);
    const took = Date.now() - t0;
    assert.ok(took <= 15_000, `dropped out after ${took} ms`);
    assert.deepEqual((await members(u1)).sort(), cluster!.ids.slice(0, 2).sort());

    // A publish on node 1 still reaches node 2, once.
    const p = await push(u1, { context: 1, user: 3, event: 'after-kill', data: 1 });
    await waitFor('the event on node 2', () => idsOf(c2).includes(p.json.id), 5000);
    assert.deepEqual(duplicates(idsOf(c2)), []);
  });
});

describe('Redis restart (comes back empty) during a steady publish stream', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  const open: { close(): void }[] = [];
  let stream: ReturnType<typeof startStream> | undefined;

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, {
      'com.openexchange.websockets.grizzly.remote.delayDuration': 50,
      'com.openexchange.websockets.grizzly.remote.maxDelayDuration': 200,
      'com.openexchange.websockets.grizzly.remote.timerFrequency': 50,
    }, 'r');
  });
  after(async () => {
    await stream?.stop();
    for (const s of open) s.close();
    await cluster?.stop();
    await redis?.stop();
  });

  for (const mode of ['down for a while', 'instant restart'] as const) it(`${mode}: ${mode === 'down for a while' ? 'ready turns false within 10 s, ' : ''}every node re-registers, every event after recovery arrives, none twice`, async () => {
    const [u1, u2, u3] = cluster!.urls;
    const l = await login(u1, 'alice@example.com', 'alice-pw');
    const c2 = await connectTimed(u2, l, { path: '/r' });
    const c3 = await connectTimed(u3, l, { path: '/r' });
    const c1 = await connectTimed(u1, l, { path: '/r' });
    open.push(c1.ws, c2.ws, c3.ws);
    const duringOutage: string[] = [];

    stream = startStream(u1, { context: 1, user: 3, event: 'tick' }, 50);
    await waitFor('the stream to reach both connections', () => c2.frames.length >= 3 && c3.frames.length >= 3, 5000);

    if (mode === 'down for a while') {
      const down = Date.now();
      await redis!.kill9();
      await waitFor('every node to report not ready', async () => (await Promise.all(cluster!.urls.map(isReady))).every((r) => !r), 10_000, 100);
      const notReadyAfter = Date.now() - down;
      assert.ok(notReadyAfter <= 10_000, `not ready only after ${notReadyAfter} ms`);
      // With Redis gone, a publish still reaches node 1's own socket at once; its remote batch waits.
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const p = await push(u1, { context: 1, user: 3, event: 'outage', data: i });
        assert.equal(p.status, 202, `publish during the outage answered ${p.status}: ${JSON.stringify(p.json)}`);
        const at = c1.at[idsOf(c1).indexOf(p.json.id)];
        assert.ok(at !== undefined, 'the outage event reached node 1\'s own socket by the time the publish was answered');
        assert.ok(at - t0 < 500, `local delivery took ${at - t0} ms`);
        duringOutage.push(p.json.id);
      }
      // What needs the store says so, rather than failing with a bare 500.
      const r = await fetch(`${u2}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'bob@example.com', password: 'bob-pw' }) });
      assert.equal(r.status, 503);
      assert.equal(r.headers.get('retry-after'), '2');
      assert.equal(((await r.json()) as any).error.code, 'TIDINGS_BACKEND_UNAVAILABLE');
    }

    await redis!.restart();
    await waitFor('every node to be ready again', async () => (await Promise.all(cluster!.urls.map(isReady))).every(Boolean), 20_000, 100);
    const recovered = Date.now();
    // Every node re-registered: each lists all three, and alice's nodes are back.
    await waitFor('every node to list all three members', async () => {
      for (const url of cluster!.urls) {
        const m = await members(url);
        if (!cluster!.ids.every((id) => m.includes(id))) return false;
      }
      return true;
    }, 10_000, 100);

    // Keep streaming a while after the recovery, then stop and send a marker.
    await waitFor('20 publishes after the recovery', () => stream!.sent.filter((s) => s.start > recovered).length >= 20, 10_000);
    await stream.stop();
    const m = await push(u1, { context: 1, user: 3, event: 'marker', data: 0 });
    assert.equal(m.status, 202);
    await waitFor('the marker on both connections', () => idsOf(c2).includes(m.json.id) && idsOf(c3).includes(m.json.id), 10_000);

    const afterRecovery = stream.sent.filter((s) => s.start > recovered).map((s) => s.id);
    for (const [name, c] of [['node 2', c2], ['node 3', c3]] as const) {
      const got = new Set(idsOf(c));
      const missing = afterRecovery.filter((id) => !got.has(id));
      assert.deepEqual(missing, [], `${name} missed events published after the recovery`);
      assert.deepEqual(duplicates(idsOf(c)), [], `${name} got an event twice`);
      // The remote batches kept through the outage were sent once Redis was back.
      assert.deepEqual(duringOutage.filter((id) => !got.has(id)), [], `${name} missed events published while Redis was down`);
    }
    assert.deepEqual(duplicates(idsOf(c1)), [], 'node 1 got an event twice');
    assert.deepEqual((await registryNodesFor(redis!.port, '3@1')).sort(), [...cluster!.ids].sort(), 'alice is registered on all three nodes again');
    c1.ws.close();
    c2.ws.close();
    c3.ws.close();
    await waitFor('alice\'s connections to leave the registry', async () => (await registryNodesFor(redis!.port, '3@1')).length === 0, 5000);
  });
});
