import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRedisClient, type RedisClient } from '../../src/adapters/redis/redis-client.js';
import { RedisClusterBus } from '../../src/adapters/redis/redis-cluster-bus.js';
import { RedisDedupeStore } from '../../src/adapters/redis/redis-dedupe-store.js';
import type { BusMessage } from '../../src/ports/cluster-bus.js';
import { startRedisCluster, startSentinelSet, type RedisClusterServers, type SentinelSet } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { portContract, redisSubjects } from './ports.contract.js';

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
    const dedupe = new RedisDedupeStore(client, { prefix: 't-fo:' });
    assert.equal(await dedupe.firstSeen('before', 60_000), true);
    const oldPrimary = sentinel!.primary.port;
    await sentinel!.failover();
    assert.notEqual(sentinel!.primary.port, oldPrimary);
    // Commands may fail while the client moves over; they must succeed again soon.
    await waitFor('a write on the new primary', () => dedupe.firstSeen(`after-${Date.now()}`, 60_000).catch(() => false), 10_000, 100);
    await waitFor('the inbox to work', () => bus.selfCheck(500), 10_000, 100);
    await waitFor('a broadcast to come back', async () => {
      await bus.broadcast({ type: 'reload', from: 'fo' }).catch(() => {});
      return seen.some((m) => m.type === 'reload');
    }, 10_000, 200);
  });
});
