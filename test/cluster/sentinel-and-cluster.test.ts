import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { login, push } from '../helpers/node.js';
import { startRedisCluster, startSentinelSet, type RedisClusterServers, type SentinelSet } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { connectTimed, crossNodeOnce, duplicates, idsOf, isReady, members, startCluster, startStream, type Cluster } from './fixture.js';

const FAST = {
  'com.openexchange.websockets.grizzly.remote.delayDuration': 50,
  'com.openexchange.websockets.grizzly.remote.maxDelayDuration': 200,
  'com.openexchange.websockets.grizzly.remote.timerFrequency': 50,
};

describe('cluster on a Sentinel set (redis+sentinel://)', () => {
  let set: SentinelSet | undefined;
  let cluster: Cluster | undefined;
  let stream: ReturnType<typeof startStream> | undefined;
  const open: { close(): void }[] = [];

  before(async () => {
    set = await startSentinelSet();
    cluster = await startCluster(set.url, FAST, 's');
  });
  after(async () => {
    await stream?.stop();
    for (const s of open) s.close();
    await cluster?.stop();
    await set?.stop();
  });

  it('cross-node delivery, exactly once', async () => {
    await crossNodeOnce(cluster!, { login: 'alice@example.com', password: 'alice-pw', context: 1, id: 3 }, '/s');
  });

  it('a failover during a steady stream: every event published once the nodes are ready again arrives, none twice', async () => {
    const [u1, u2, u3] = cluster!.urls;
    const l = await login(u1, 'bob@example.com', 'bob-pw');
    const c2 = await connectTimed(u2, l, { path: '/f' });
    const c3 = await connectTimed(u3, l, { path: '/f' });
    open.push(c2.ws, c3.ws);
    stream = startStream(u1, { context: 1, user: 4, event: 'tick' }, 50);
    await waitFor('the stream to reach both connections', () => c2.frames.length >= 3 && c3.frames.length >= 3, 5000);

    const oldPrimary = set!.primary.port;
    await set!.failover();
    assert.notEqual(set!.primary.port, oldPrimary);
    // Ready again: every node ready, lists all three, and a probe published now arrives on both.
    await waitFor('the nodes to be ready again after the failover', async () => {
      if (!(await Promise.all(cluster!.urls.map(isReady))).every(Boolean)) return false;
      const m = await members(u1);
      if (!cluster!.ids.every((id) => m.includes(id))) return false;
      const probe = await push(u1, { context: 1, user: 4, event: 'probe', data: 0 });
      if (probe.status !== 202) return false;
      return waitFor('the probe', () => idsOf(c2).includes(probe.json.id) && idsOf(c3).includes(probe.json.id), 2000).then(() => true, () => false);
    }, 30_000, 200);
    const recovered = Date.now();

    await waitFor('20 publishes after the recovery', () => stream!.sent.filter((s) => s.start > recovered).length >= 20, 10_000);
    await stream.stop();
    const m = await push(u1, { context: 1, user: 4, event: 'marker', data: 0 });
    await waitFor('the marker on both connections', () => idsOf(c2).includes(m.json.id) && idsOf(c3).includes(m.json.id), 10_000);
    const afterRecovery = stream.sent.filter((s) => s.start > recovered).map((s) => s.id);
    for (const [name, c] of [['node 2', c2], ['node 3', c3]] as const) {
      const got = new Set(idsOf(c));
      assert.deepEqual(afterRecovery.filter((id) => !got.has(id)), [], `${name} missed events published after the recovery`);
      assert.deepEqual(duplicates(idsOf(c)), [], `${name} got an event twice`);
    }
  });
});

describe('cluster on a 3-primary Redis Cluster (seed list)', () => {
  let servers: RedisClusterServers | undefined;
  let cluster: Cluster | undefined;

  before(async () => {
    servers = await startRedisCluster();
    cluster = await startCluster(servers.url, FAST, 'c');
  });
  after(async () => {
    await cluster?.stop();
    await servers?.stop();
  });

  it('all three nodes are members, and cross-node delivery works exactly once for several users', async () => {
    assert.deepEqual((await members(cluster!.urls[2])).sort(), [...cluster!.ids].sort());
    // Different users hash to different slots (and so, likely, different primaries).
    await crossNodeOnce(cluster!, { login: 'alice@example.com', password: 'alice-pw', context: 1, id: 3 }, '/c1');
    await crossNodeOnce(cluster!, { login: 'bob@example.com', password: 'bob-pw', context: 1, id: 4 }, '/c2');
    await crossNodeOnce(cluster!, { login: 'carol@other.org', password: 'carol-pw', context: 2, id: 3 }, '/c3');
  });
});
