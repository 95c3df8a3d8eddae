import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { createRedisClient, type RedisClient } from '../../src/adapters/redis/redis-client.js';
import { RedisClusterBus } from '../../src/adapters/redis/redis-cluster-bus.js';
import { RedisConnectionRegistry } from '../../src/adapters/redis/redis-connection-registry.js';
import { RedisKeys } from '../../src/adapters/redis/keys.js';
import { RedisPublishLookup } from '../../src/adapters/redis/redis-publish-lookup.js';
import { RELEASE_LOCK } from '../../src/adapters/redis/redis-registry-scripts.js';
import { RedisSessionStore } from '../../src/adapters/redis/redis-session-store.js';
import { BackendUnavailableError } from '../../src/backend-unavailable.js';
import type { BusMessage } from '../../src/ports/cluster-bus.js';
import type { ConnectionEntry } from '../../src/ports/connection-registry.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { publishRequest } from '../helpers/publish-request.js';

// Failure behaviour only Redis has: dead nodes, a Redis that comes back empty, connection blips.
const HEARTBEAT = 100;
const TTL = 600;
let server: RedisServer;
const clients: RedisClient[] = [];
const stoppers: (() => Promise<void>)[] = [];
let n = 0;

before(async () => {
  server = await startRedis();
});
after(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});
afterEach(async () => {
  for (const stop of stoppers.splice(0)) await stop().catch(() => {});
});

const prefix = (): string => `r${++n}:`;
const user = (): string => `${++n}@77`;
const entry = (nodeId: string, connectionId = randomUUID()): ConnectionEntry => ({ connectionId, nodeId, sessionId: 's', transport: 'websocket', path: '/ws' });

function client(role: string): RedisClient {
  const c = createRedisClient(server.url, { role });
  clients.push(c);
  return c;
}

/** A registry node, with `nodes(user)`: where a publish to the user would go, by this node's publish lookup. */
async function registry(p: string, nodeId: string, heartbeatMs = HEARTBEAT, livenessTtlMs = TTL): Promise<RedisConnectionRegistry & { nodes(user: string): Promise<string[]> }> {
  const c = client(`reg-${nodeId}`);
  const r = new RedisConnectionRegistry(c, { prefix: p, nodeId, heartbeatMs, livenessTtlMs });
  const lookup = new RedisPublishLookup(c, { prefix: p, membership: r.membership });
  await r.start();
  stoppers.push(() => r.stop());
  return Object.assign(r, { nodes: async (user: string) => [...(await lookup.lookup(publishRequest(user, null, 1000))).nodes] });
}

async function bus(p: string, nodeId: string): Promise<{ bus: RedisClusterBus; got: BusMessage[] }> {
  const b = new RedisClusterBus(client(`bus-${nodeId}`), { prefix: p, nodeId });
  const got: BusMessage[] = [];
  b.onMessage((m) => got.push(m));
  await b.start();
  stoppers.push(() => b.stop());
  return { bus: b, got };
}

const ended = (sessionId: string): BusMessage => ({ type: 'session-ended', from: 'test', sessionId });
const sessionIds = (got: BusMessage[]): string[] => got.flatMap((m) => (m.type === 'session-ended' ? [m.sessionId] : []));

describe('registry: a node that stops heart-beating', () => {
  it('drops out of the publish lookup within livenessTtlMs (+ one heartbeat) and its entries are reaped', async () => {
    const p = prefix();
    const keys = new RedisKeys(p);
    const a = await registry(p, 'a');
    const b = await registry(p, 'b');
    const u = user();
    await a.admit(u, entry('a'), 8);
    await a.admit(u, entry('a'), 8);
    await b.admit(u, entry('b'), 8);
    assert.deepEqual((await b.nodes(u)).sort(), ['a', 'b']);
    const crashedAt = Date.now();
    a.crash();
    await waitFor('a to drop out of the publish lookup', async () => !(await b.nodes(u)).includes('a'), TTL + 10 * HEARTBEAT);
    const took = Date.now() - crashedAt;
    assert.ok(took <= TTL + 3 * HEARTBEAT, `took ${took} ms`);
    // While the reap is pending, a's connections no longer count towards the cap either.
    assert.equal(await b.countFor(u), 1);
    await waitFor('a to be reaped', async () => (await redisCommand(server.port, 'HLEN', keys.userConnections(u))) === 1, 5000);
    assert.deepEqual(await redisCommand(server.port, 'HKEYS', keys.userNodes(u)), ['b']);
    assert.equal(await redisCommand(server.port, 'EXISTS', keys.nodeUsers('a')), 0);
    await waitFor('a to leave the index', async () => (await redisCommand(server.port, 'ZSCORE', keys.nodeIndex(), 'a')) === null, 5000);
    assert.deepEqual((await b.members()).map((m) => m.nodeId), ['b']);
  });

  it('a reconnect with the connection id of a dead node takes the id over', async () => {
    const p = prefix();
    const a = await registry(p, 'a');
    const b = await registry(p, 'b');
    const u = user();
    const conn = randomUUID();
    await a.admit(u, entry('a', conn), 8);
    assert.equal((await b.admit(u, entry('b', conn), 8)).ok, false);
    a.crash();
    await waitFor('a to drop out', async () => !(await b.nodes(u)).includes('a'), TTL + 10 * HEARTBEAT);
    assert.deepEqual(await b.admit(u, entry('b', conn), 8), { ok: true, count: 1 });
    assert.deepEqual(await b.nodes(u), ['b']);
  });

  it('a node restarted under the same id drops what its previous life left', async () => {
    const p = prefix();
    const a = await registry(p, 'a');
    const u = user();
    await a.admit(u, entry('a'), 8);
    a.crash();
    const again = await registry(p, 'a');
    assert.equal(await again.countFor(u), 0);
    assert.deepEqual(await again.nodes(u), []);
  });
});

describe('publish lookup', () => {
  it('answers the idempotency check, the history append and the node lookup in one command, with a key or without', async () => {
    const p = prefix();
    const a = await registry(p, 'a');
    const u = user();
    await a.admit(u, entry('a'), 8);
    // A node that beats rarely, so that nothing else runs on its client during the call.
    const c = await registry(p, 'c', 60_000, 120_000);
    const conn = clients[clients.length - 1];
    const lookup = new RedisPublishLookup(conn, { prefix: p, membership: c.membership });
    const ask = async (dedupeKey: string | null) => {
      const r = await lookup.lookup(publishRequest(u, dedupeKey, 300));
      return { fresh: r.fresh, nodes: r.nodes, seq: r.offset?.seq ?? null };
    };
    assert.deepEqual((await lookup.lookup(publishRequest(u, 'warm-up'))).nodes, ['a']);
    const spied = conn as unknown as { sendCommand(cmd: { name: string }): unknown };
    const sent: string[] = [];
    const original = spied.sendCommand.bind(spied);
    spied.sendCommand = (cmd) => {
      sent.push(cmd.name);
      return original(cmd);
    };
    try {
      assert.deepEqual(await ask('k1'), { fresh: true, nodes: ['a'], seq: 2 });
      assert.deepEqual(sent, ['evalsha']);
      // One round trip per published event, also without an idempotency key.
      assert.deepEqual(await ask(null), { fresh: true, nodes: ['a'], seq: 3 });
      assert.deepEqual(sent, ['evalsha', 'evalsha']);
    } finally {
      spied.sendCommand = original;
    }
    assert.deepEqual(await ask('k1'), { fresh: false, nodes: [], seq: null });
    assert.deepEqual(await ask(null), { fresh: true, nodes: ['a'], seq: 4 });
    await waitFor('the key to expire', async () => (await ask('k1')).fresh, 5000);
  });
});

describe('reap lock', () => {
  it('is released only by its holder', async () => {
    const c = client('lock');
    const lock = new RedisKeys(prefix()).nodeReapLock('dead');
    await c.set(lock, 'next-holder', 'PX', 60_000);
    assert.equal(await RELEASE_LOCK.run(c, [lock], ['earlier-holder']), 0);
    assert.equal(await c.get(lock), 'next-holder');
    assert.equal(await RELEASE_LOCK.run(c, [lock], ['next-holder']), 1);
    assert.equal(await c.exists(lock), 0);
  });
});

describe('redis restarts empty', () => {
  it('every node re-registers its connections, and the bus works again', async () => {
    const p = prefix();
    const a = await registry(p, 'a');
    const b = await registry(p, 'b');
    const busA = await bus(p, 'a');
    const busB = await bus(p, 'b');
    const u1 = user();
    const u2 = user();
    await a.admit(u1, entry('a'), 8);
    await a.admit(u1, entry('a'), 8);
    await b.admit(u2, entry('b'), 8);
    await b.admit(u1, entry('b'), 8);
    await server.restart();
    await waitFor('the registry to be whole again', async () => {
      const [n1, n2, c1, c2] = await Promise.all([b.nodes(u1), a.nodes(u2), b.countFor(u1), a.countFor(u2)]);
      return n1.sort().join() === 'a,b' && n2.join() === 'b' && c1 === 3 && c2 === 1;
    }, 5000, 50);
    await waitFor('the inbox reader to work again', () => busB.bus.selfCheck(500), 5000, 50);
    const sid = randomUUID();
    await busA.bus.sendToNode('b', ended(sid));
    await waitFor('the message', () => sessionIds(busB.got).includes(sid));
    const reason = randomUUID();
    await waitFor('a broadcast to arrive again', async () => {
      await busB.bus.broadcast({ type: 'config-changed', from: 'b', reason });
      return busA.got.some((m) => m.type === 'config-changed' && m.reason === reason);
    }, 5000, 100);
  });
});

describe('registered(): readiness of the registry itself', () => {
  it('is false from the moment Redis goes away until the entries are back, and true only once they are', async () => {
    const p = prefix();
    // A slow heartbeat: only the reconnect itself may bring the entries back in time.
    const a = await registry(p, 'a', 1000, 10_000);
    const b = await registry(p, 'b', 1000, 10_000);
    const users = [user(), user(), user()];
    for (const u of users) await a.admit(u, entry('a'), 8);
    assert.equal(a.registered(), true);
    await server.restart();
    assert.equal(a.registered(), false, 'not registered right after Redis came back empty');
    await waitFor('a to report itself registered again', () => a.registered(), 5000, 5);
    // No waiting here: once a says it is registered, every entry must already be there.
    for (const u of users) assert.deepEqual(await b.nodes(u), ['a']);
  });
});

describe('redis loses every key without a reconnect (FLUSHALL)', () => {
  it('the next heartbeat finds its liveness key missing and re-registers', async () => {
    const p = prefix();
    const a = await registry(p, 'a');
    const b = await registry(p, 'b');
    const u = user();
    await a.admit(u, entry('a'), 8);
    await redisCommand(server.port, 'FLUSHALL');
    await waitFor('a to be back', async () => (await b.nodes(u)).join() === 'a' && (await b.countFor(u)) === 1, 5 * HEARTBEAT + 1000, 20);
  });
});

describe('bus: connection blips', () => {
  it('a message sent while the reader connection is down arrives after it reconnects', async () => {
    const p = prefix();
    const { bus: busA } = await bus(p, 'a');
    const { got } = await bus(p, 'b');
    const readerId = async (): Promise<string | undefined> => {
      const list = String(await redisCommand(server.port, 'CLIENT', 'LIST'));
      return /id=(\d+) .*name=tidings-bus-reader-b /.exec(list)?.[1];
    };
    const before = await waitFor('b reader connection', readerId);
    assert.equal(await redisCommand(server.port, 'CLIENT', 'KILL', 'ID', before), 1);
    const sids = [randomUUID(), randomUUID(), randomUUID()];
    for (const sid of sids) await busA.sendToNode('b', ended(sid));
    await waitFor('all three messages', () => sids.every((sid) => sessionIds(got).includes(sid)), 5000);
    assert.deepEqual(sessionIds(got), sids);
    assert.notEqual(await readerId(), before);
  });

  it('malformed inbox entries are dropped and the reader goes on', async () => {
    const p = prefix();
    const keys = new RedisKeys(p);
    const { got, bus: b } = await bus(p, 'b');
    const inbox = keys.nodeInbox('b');
    await redisCommand(server.port, 'XADD', inbox, '*', 'data', 'not json');
    await redisCommand(server.port, 'XADD', inbox, '*', 'data', '{"type":"deliver","from":"x","batch":5}');
    await redisCommand(server.port, 'XADD', inbox, '*', 'other', 'field');
    await redisCommand(server.port, 'PUBLISH', keys.broadcastChannel(), '[1,2]');
    const sid = randomUUID();
    await b.sendToNode('b', ended(sid));
    await waitFor('the good message', () => sessionIds(got).includes(sid));
    assert.equal(got.length, 1);
    await waitFor('read entries to be trimmed', async () => (await redisCommand(server.port, 'XLEN', inbox)) === 0, 5000);
  });

  it('messages left in an inbox before start-up are stale and skipped', async () => {
    const p = prefix();
    const keys = new RedisKeys(p);
    await redisCommand(server.port, 'XADD', keys.nodeInbox('b'), '*', 'data', JSON.stringify(ended('old')));
    const { got, bus: b } = await bus(p, 'b');
    const sid = randomUUID();
    await b.sendToNode('b', ended(sid));
    await waitFor('the new message', () => sessionIds(got).includes(sid));
    assert.deepEqual(sessionIds(got), [sid]);
  });

  it('selfCheck is false once stopped', async () => {
    const { bus: b } = await bus(prefix(), 'b');
    assert.equal(await b.selfCheck(2000), true);
    await b.stop();
    assert.equal(await b.selfCheck(200), false);
  });
});

describe('redis down', () => {
  it('commands fail fast, selfCheck says false in time, and both recover when redis is back', async () => {
    const p = prefix();
    const { bus: b } = await bus(p, 'b');
    const c = client('down');
    const reg = await registry(p, 'down', 1000, 10_000);
    const lookup = new RedisPublishLookup(c, { prefix: p, membership: reg.membership });
    const sessions = new RedisSessionStore(c, { prefix: p });
    assert.equal(await c.set(`${p}x`, '1'), 'OK');
    await server.kill9();
    const t0 = Date.now();
    await assert.rejects(c.get(`${p}x`));
    assert.ok(Date.now() - t0 < 3000, `a command took ${Date.now() - t0} ms to fail`);
    // The adapters name the outage; nothing outside them needs to know ioredis' errors.
    const unavailable = (e: unknown) => e instanceof BackendUnavailableError;
    await assert.rejects(lookup.lookup(publishRequest(user(), 'k', 1000)), unavailable);
    await assert.rejects(sessions.get('s'), unavailable);
    await assert.rejects(reg.countFor(user()), unavailable);
    await assert.rejects(b.sendToNode('b', ended('x')), unavailable);
    const t1 = Date.now();
    assert.equal(await b.selfCheck(300), false);
    assert.ok(Date.now() - t1 < 1000);
    await server.restart();
    await waitFor('commands to work again', () => c.set(`${p}x`, '2').catch(() => null), 5000, 50);
    await waitFor('the bus to work again', () => b.selfCheck(500), 5000, 50);
  });
});
