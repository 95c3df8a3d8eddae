import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRedisClient, type RedisClient } from '../../src/adapters/redis/redis-client.js';
import { RedisClusterBus } from '../../src/adapters/redis/redis-cluster-bus.js';
import { RedisConnectionRegistry } from '../../src/adapters/redis/redis-connection-registry.js';
import { RedisPublishLookup } from '../../src/adapters/redis/redis-publish-lookup.js';
import { RedisConfigStore } from '../../src/adapters/redis/redis-config-store.js';
import { RedisKeys } from '../../src/adapters/redis/keys.js';
import type { BusMessage } from '../../src/ports/cluster-bus.js';
import { redisCommand, startRedisCluster, startSentinelSet, type RedisClusterServers, type SentinelSet } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { publishRequest } from '../helpers/publish-request.js';
import { portContract, redisSubjects } from './ports.contract.js';
import { eventLogContract, redisEventLogSubjects } from './event-log.contract.js';

// Redis Cluster (3 primaries): every multi-key script must stay in one slot, broadcasts go
// through sharded pub/sub. Sentinel: the client finds the primary through the sentinels.
let cluster: RedisClusterServers | undefined;
let sentinel: SentinelSet | undefined;
after(async () => {
  await cluster?.stop();
  await sentinel?.stop();
});

portContract('redis cluster', async () => {
  cluster = await startRedisCluster();
  return redisSubjects(cluster.url, 'cl');
});

portContract('redis sentinel', async () => {
  sentinel = await startSentinelSet();
  return redisSubjects(sentinel.url, 'sen');
});

eventLogContract('redis cluster', async () => {
  cluster ??= await startRedisCluster();
  return redisEventLogSubjects(cluster.url, 'cl');
});

eventLogContract('redis sentinel', async () => {
  sentinel ??= await startSentinelSet();
  return redisEventLogSubjects(sentinel.url, 'sen');
});

describe('sentinel failover', () => {
  let client: RedisClient;
  let bus: RedisClusterBus;
  const seen: BusMessage[] = [];

  before(async () => {
    sentinel ??= await startSentinelSet();
    client = createRedisClient(sentinel.url, { role: 'failover' });
    bus = new RedisClusterBus(client, { prefix: 't-fo:', nodeId: 'fo' });
    bus.onMessage((m) => seen.push(m));
    await bus.start();
  });

  after(async () => {
    await bus?.stop();
    client?.disconnect();
  });

  it('writes, the inbox and broadcasts work again on the new primary within seconds', async () => {
    const store = new RedisConfigStore(client, { prefix: 't-fo:' });
    const write = (key: string) => store.set({ contextId: 1, userId: null, key, value: '1' }).then(() => true);
    assert.equal(await write('before'), true);
    const oldPrimary = sentinel!.primary.port;
    await sentinel!.failover();
    assert.notEqual(sentinel!.primary.port, oldPrimary);
    // Commands may fail while the client moves over; they must succeed again soon.
    await waitFor('a write on the new primary', () => write(`after-${Date.now()}`).catch(() => false), 10_000, 100);
    await waitFor('the inbox to work', () => bus.selfCheck(500), 10_000, 100);
    await waitFor('a broadcast to come back', async () => {
      await bus.broadcast({ type: 'reload', from: 'fo' }).catch(() => {});
      return seen.some((m) => m.type === 'reload');
    }, 10_000, 200);
  });
});

describe('redis cluster: one primary restarts empty', () => {
  const stops: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const s of stops.reverse()) await s();
  });

  /** The port of the primary that owns `key` (the others answer MOVED). */
  async function ownerOf(key: string): Promise<number> {
    for (const port of cluster!.ports) if ((await redisCommand(port, 'EXISTS', key).catch(() => null)) !== null) return port;
    throw new Error(`no primary owns ${key}`);
  }

  it('a node whose liveness key lives on another primary re-registers the users that primary lost', async () => {
    cluster ??= await startRedisCluster();
    const prefix = 'shard:';
    const keys = new RedisKeys(prefix);
    const start = async (nodeId: string) => {
      const c = createRedisClient(cluster!.url, { role: `reg-${nodeId}` });
      const r = new RedisConnectionRegistry(c, { prefix, nodeId, heartbeatMs: 100, livenessTtlMs: 30_000 });
      const lookup = new RedisPublishLookup(c, { prefix, membership: r.membership });
      // A long liveness TTL: the node's own liveness key survives the outage, as it would in a short restart.
      await r.start();
      stops.push(() => c.disconnect(), () => r.stop());
      return Object.assign(r, { nodes: async (user: string) => (await lookup.lookup(publishRequest(user, null, 1000))).nodes.join() });
    };
    const a = await start('a');
    const b = await start('b');
    const users = Array.from({ length: 30 }, (_, i) => `${i + 1}@9`);
    for (const u of users) assert.equal((await a.admit(u, { connectionId: `c-${u}`, nodeId: 'a', sessionId: 's', transport: 'websocket', path: '/ws' }, 8)).ok, true);

    const alive = await ownerOf(keys.nodeAlive('a'));
    const victim = cluster!.ports.findIndex((p) => p !== alive);
    const lost: string[] = [];
    for (const u of users) if ((await ownerOf(keys.userNodes(u))) === cluster!.ports[victim]) lost.push(u);
    assert.ok(lost.length > 0, 'some users live on the primary that restarts');

    await cluster!.restartShard(victim);
    await waitFor('every user to be registered on node a again', async () => {
      for (const u of users) if ((await b.nodes(u)) !== 'a' || (await b.countFor(u)) !== 1) return false;
      return true;
    }, 10_000, 50);
  });
});
