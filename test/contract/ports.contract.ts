import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { BusMessage, ClusterBus } from '../../src/ports/cluster-bus.js';
import type { ConfigStore } from '../../src/ports/config-store.js';
import type { ConnectionEntry, ConnectionRegistry } from '../../src/ports/connection-registry.js';
import type { EventLog } from '../../src/ports/event-log.js';
import type { PublishLookup } from '../../src/ports/publish-lookup.js';
import type { Session, SessionStore } from '../../src/ports/session-store.js';
import type { TransportKind, UserKey } from '../../src/domain/types.js';
import { appendEntry, publishRequest, TEST_LIMITS } from '../helpers/publish-request.js';
import { waitFor } from '../helpers/wait.js';

/**
 * What every backend must guarantee, as one suite run against each implementation
 * (memory, standalone Redis, Redis Cluster, Sentinel).
 *
 * `make` returns unstarted components; the suite starts and stops them. registryA/lookupA/busA
 * are one node (id `busA.nodeId`), registryB/lookupB/busB another, sharing one backend.
 * Tests run in order and share the backend, so each uses fresh ids.
 */
export interface ContractSubjects {
  readonly sessions: SessionStore;
  readonly config: ConfigStore;
  readonly registryA: ConnectionRegistry;
  readonly registryB: ConnectionRegistry;
  readonly lookupA: PublishLookup;
  readonly lookupB: PublishLookup;
  /** The event log both lookups append to (read back to check the append). */
  readonly eventLog: EventLog;
  readonly busA: ClusterBus;
  readonly busB: ClusterBus;
  cleanup(): Promise<void>;
}

let seq = 0;
const ctx = 1 + Math.floor(Math.random() * 1_000_000);
/** A user no other test touches. */
const freshUser = (): UserKey => `${++seq}@${ctx}`;
const id = (): string => randomUUID().replace(/-/g, '');
/** The nodes a publish to `user` would go to (no idempotency key). */
const nodesOf = async (lookup: PublishLookup, user: UserKey): Promise<string[]> => [...(await lookup.lookup(publishRequest(user, null, 1000))).nodes];

function entry(nodeId: string, connectionId = id(), transport: TransportKind = 'websocket'): ConnectionEntry {
  return { connectionId, nodeId, sessionId: id(), transport, path: '/socket.io/appsuite' };
}

function session(ttlMs: number): Session {
  const now = Date.now();
  return { id: id(), secret: id(), userId: 3, contextId: ctx, login: 'alice@example.com', clientIp: '127.0.0.1', createdAt: now, expiresAt: now + ttlMs };
}

export function portContract(name: string, make: () => Promise<ContractSubjects>): void {
  describe(`port contract: ${name}`, () => {
    let s: ContractSubjects;
    let A: string;
    let B: string;
    const got = new Map<string, BusMessage[]>();

    before(async () => {
      s = await make();
      A = s.busA.nodeId;
      B = s.busB.nodeId;
      got.set(A, []);
      got.set(B, []);
      s.busA.onMessage((m) => got.get(A)!.push(m));
      s.busB.onMessage((m) => got.get(B)!.push(m));
      for (const c of [s.sessions, s.config, s.registryA, s.registryB, s.lookupA, s.lookupB, s.busA, s.busB]) await c.start();
    });

    after(async () => {
      if (!s) return;
      for (const c of [s.busA, s.busB, s.lookupA, s.lookupB, s.registryA, s.registryB, s.sessions, s.config]) await c.stop().catch(() => {});
      await s.cleanup();
    });

    describe('SessionStore', () => {
      it('returns what was put, and null for an unknown id', async () => {
        const x = session(60_000);
        await s.sessions.put(x);
        assert.deepEqual(await s.sessions.get(x.id), x);
        assert.equal(await s.sessions.get(id()), null);
      });

      it('touch moves the expiry past the original one', async () => {
        const touched = session(300);
        const control = session(300);
        await s.sessions.put(touched);
        await s.sessions.put(control);
        const later = Date.now() + 60_000;
        await s.sessions.touch(touched.id, later);
        assert.equal((await s.sessions.get(touched.id))?.expiresAt, later);
        await waitFor('the untouched session to expire', async () => (await s.sessions.get(control.id)) === null, 5000);
        assert.deepEqual(await s.sessions.get(touched.id), { ...touched, expiresAt: later });
      });

      it('touch of a session that is gone does not bring it back', async () => {
        const x = session(60_000);
        await s.sessions.touch(x.id, Date.now() + 60_000);
        assert.equal(await s.sessions.get(x.id), null);
        await s.sessions.put(x);
        await s.sessions.delete(x.id);
        await s.sessions.touch(x.id, Date.now() + 60_000);
        assert.equal(await s.sessions.get(x.id), null);
      });

      it('delete returns the session once, then null', async () => {
        const x = session(60_000);
        await s.sessions.put(x);
        assert.deepEqual(await s.sessions.delete(x.id), x);
        assert.equal(await s.sessions.get(x.id), null);
        assert.equal(await s.sessions.delete(x.id), null);
      });

      it('expires a session at expiresAt on its own', async () => {
        const x = session(200);
        await s.sessions.put(x);
        assert.notEqual(await s.sessions.get(x.id), null);
        await waitFor('the session to expire', async () => (await s.sessions.get(x.id)) === null, 5000);
        const past = { ...session(0), expiresAt: Date.now() - 1000 };
        await s.sessions.put(past);
        assert.equal(await s.sessions.get(past.id), null);
      });
    });

    describe('PublishLookup', () => {
      const ask = (l: PublishLookup, user: UserKey, dedupeKey: string | null, dedupeTtlMs = 60_000) => l.lookup(publishRequest(user, dedupeKey, dedupeTtlMs));
      const REPEAT = { fresh: false, nodes: [], offset: null };

      it('is fresh the first time a key is seen and a repeat after, whichever node asks', async () => {
        const u = freshUser();
        const k = id();
        assert.equal((await ask(s.lookupA, u, k)).fresh, true);
        assert.deepEqual(await ask(s.lookupA, u, k), REPEAT);
        assert.deepEqual(await ask(s.lookupB, u, k), REPEAT);
        assert.equal((await ask(s.lookupB, u, id())).fresh, true);
      });

      it('scopes a key to its user', async () => {
        const k = id();
        assert.equal((await ask(s.lookupA, freshUser(), k)).fresh, true);
        assert.equal((await ask(s.lookupA, freshUser(), k)).fresh, true);
      });

      it('without a key is always fresh', async () => {
        const u = freshUser();
        for (let i = 0; i < 3; i++) assert.equal((await ask(s.lookupA, u, null)).fresh, true);
      });

      it('forgets a key after its window', async () => {
        const u = freshUser();
        const k = id();
        assert.equal((await ask(s.lookupA, u, k, 200)).fresh, true);
        assert.equal((await ask(s.lookupB, u, k, 200)).fresh, false);
        await waitFor('the key to be forgotten', async () => (await ask(s.lookupB, u, k, 200)).fresh, 5000);
      });

      it('lets exactly one of many concurrent callers on two nodes through', async () => {
        const u = freshUser();
        const k = id();
        const r = await Promise.all(Array.from({ length: 20 }, (_, i) => ask(i % 2 ? s.lookupA : s.lookupB, u, k)));
        assert.equal(r.filter((x) => x.fresh).length, 1);
      });

      it('names the nodes holding the user, as the registry does, with and without a key', async () => {
        const u = freshUser();
        assert.deepEqual((await ask(s.lookupA, u, id())).nodes, []);
        const a1 = entry(A);
        await s.registryA.admit(u, a1, 8);
        await s.registryB.admit(u, entry(B), 8);
        for (const l of [s.lookupA, s.lookupB]) {
          for (const k of [id(), null]) {
            const r = await ask(l, u, k);
            assert.equal(r.fresh, true);
            assert.deepEqual([...r.nodes].sort(), [A, B].sort());
          }
        }
        await s.registryA.remove(u, a1.connectionId);
        assert.deepEqual((await ask(s.lookupB, u, null)).nodes, [B]);
      });

      describe('with the history append', () => {
        it('appends a fresh event, keyed or not, and answers its offset with the nodes holding the user', async () => {
          const u = freshUser();
          await s.registryA.admit(u, { ...entry(A), path: '/x' }, 8);
          const r = await s.lookupB.lookup(publishRequest(u, null, 60_000, appendEntry(1, '/x')));
          assert.equal(r.fresh, true);
          assert.deepEqual(r.nodes, [A]);
          assert.equal(r.offset?.seq, 1);
          const keyed = await s.lookupA.lookup(publishRequest(u, id(), 60_000, appendEntry(2, null, 'conn-1')));
          assert.deepEqual(keyed.offset, { epoch: r.offset!.epoch, seq: 2 });
          const read = await s.eventLog.read(u, { epoch: r.offset!.epoch, seq: 0 }, TEST_LIMITS);
          assert.ok(read.recovered, JSON.stringify(read));
          assert.deepEqual(read.entries.map((e) => [JSON.parse(e.body).args[0], e.pathFilter, e.sourceToken]), [[1, '/x', null], [2, null, 'conn-1']]);
        });

        it('a repeated idempotency key appends nothing, and its answer has no offset', async () => {
          const u = freshUser();
          const first = await s.lookupA.lookup(publishRequest(u, 'k1', 60_000, appendEntry(1)));
          const again = await s.lookupB.lookup(publishRequest(u, 'k1', 60_000, appendEntry(1)));
          assert.deepEqual(again, REPEAT);
          const other = await s.lookupB.lookup(publishRequest(u, 'k2', 60_000, appendEntry(2)));
          assert.deepEqual(other.offset, { epoch: first.offset!.epoch, seq: 2 });
          const read = await s.eventLog.read(u, { epoch: first.offset!.epoch, seq: 0 }, TEST_LIMITS);
          assert.ok(read.recovered && read.entries.length === 2, JSON.stringify(read));
        });

        it('gives concurrent publishes from two nodes one gap-free sequence', async () => {
          const u = freshUser();
          const r = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? s.lookupA : s.lookupB).lookup(publishRequest(u, i % 3 ? id() : null, 60_000, appendEntry(i)))));
          assert.equal(new Set(r.map((x) => x.offset!.epoch)).size, 1);
          assert.deepEqual(r.map((x) => x.offset!.seq).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
        });
      });
    });

    describe('ConfigStore', () => {
      it('sets, overwrites, lists and unsets context- and user-scope values', async () => {
        const c = ctx + 1_000_000 + (seq++);
        const mine = async () => (await s.config.all()).filter((v) => v.contextId === c).sort((a, b) => String(a.userId).localeCompare(String(b.userId)));
        await s.config.set({ contextId: c, userId: null, key: 'com.openexchange.websockets.enabled', value: 'true' });
        await s.config.set({ contextId: c, userId: 7, key: 'com.openexchange.websockets.enabled', value: 'false' });
        await s.config.set({ contextId: c, userId: null, key: 'com.openexchange.websockets.enabled', value: 'false' });
        assert.deepEqual(await mine(), [
          { contextId: c, userId: 7, key: 'com.openexchange.websockets.enabled', value: 'false' },
          { contextId: c, userId: null, key: 'com.openexchange.websockets.enabled', value: 'false' },
        ]);
        assert.equal(await s.config.unset(c, 7, 'com.openexchange.websockets.enabled'), true);
        assert.equal(await s.config.unset(c, 7, 'com.openexchange.websockets.enabled'), false);
        assert.deepEqual(await mine(), [{ contextId: c, userId: null, key: 'com.openexchange.websockets.enabled', value: 'false' }]);
      });
    });

    describe('ConnectionRegistry', () => {
      it('admits connections from both nodes and counts them cluster-wide', async () => {
        const u = freshUser();
        assert.deepEqual(await s.registryA.admit(u, entry(A), 8), { ok: true, count: 1 });
        assert.deepEqual(await s.registryB.admit(u, entry(B), 8), { ok: true, count: 2 });
        assert.deepEqual(await s.registryA.admit(u, entry(A), 8), { ok: true, count: 3 });
        assert.equal(await s.registryA.countFor(u), 3);
        assert.equal(await s.registryB.countFor(u), 3);
        assert.deepEqual((await nodesOf(s.lookupA, u)).sort(), [A, B].sort());
        assert.deepEqual((await nodesOf(s.lookupB, u)).sort(), [A, B].sort());
      });

      it('refuses past the per-user cap, counting both nodes', async () => {
        const u = freshUser();
        await s.registryA.admit(u, entry(A), 2);
        await s.registryB.admit(u, entry(B), 2);
        assert.deepEqual(await s.registryA.admit(u, entry(A), 2), { ok: false, reason: 'cap', count: 2 });
        assert.deepEqual(await s.registryB.admit(u, entry(B), 2), { ok: false, reason: 'cap', count: 2 });
        assert.equal(await s.registryA.countFor(u), 2);
      });

      it('refuses a duplicate connection id, whichever node asks', async () => {
        const u = freshUser();
        const conn = id();
        assert.equal((await s.registryA.admit(u, entry(A, conn), 8)).ok, true);
        assert.deepEqual(await s.registryB.admit(u, entry(B, conn), 8), { ok: false, reason: 'duplicate', count: 1 });
        assert.deepEqual(await s.registryA.admit(u, entry(A, conn), 8), { ok: false, reason: 'duplicate', count: 1 });
        assert.deepEqual(await nodesOf(s.lookupA, u), [A]);
      });

      it('cannot be raced past the cap by concurrent admits on two nodes', async () => {
        const u = freshUser();
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? s.registryA.admit(u, entry(A), 3) : s.registryB.admit(u, entry(B), 3))));
        assert.equal(results.filter((r) => r.ok).length, 3);
        assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === 'cap'));
        assert.equal(await s.registryA.countFor(u), 3);
      });

      it("remove drops a connection, and a node without connections of the user is no longer among the publish lookup's nodes", async () => {
        const u = freshUser();
        const a1 = entry(A);
        const a2 = entry(A);
        const b1 = entry(B);
        for (const [r, e] of [[s.registryA, a1], [s.registryA, a2], [s.registryB, b1]] as const) await r.admit(u, e, 8);
        await s.registryA.remove(u, a1.connectionId);
        assert.equal(await s.registryB.countFor(u), 2);
        assert.deepEqual((await nodesOf(s.lookupB, u)).sort(), [A, B].sort());
        await s.registryA.remove(u, a2.connectionId);
        assert.deepEqual(await nodesOf(s.lookupB, u), [B]);
        await s.registryA.remove(u, a2.connectionId); // already gone: no error
        await s.registryB.remove(u, b1.connectionId);
        assert.deepEqual(await nodesOf(s.lookupA, u), []);
        assert.equal(await s.registryA.countFor(u), 0);
        // The freed id can be used again.
        assert.equal((await s.registryB.admit(u, entry(B, a1.connectionId), 8)).ok, true);
      });

      it('knows nothing of a user without connections', async () => {
        const u = freshUser();
        assert.deepEqual(await nodesOf(s.lookupA, u), []);
        assert.equal(await s.registryB.countFor(u), 0);
      });

      it('members lists both live nodes with connection counts by transport', async () => {
        // Counts are as of each node's lastSeen (its last heartbeat): wait for a heartbeat newer
        // than the last change, then they must be exact.
        const settled = async (what: string) => {
          const since = Date.now();
          return waitFor(what, async () => {
            const m = await s.registryA.members();
            return m.length === 2 && m.every((x) => x.lastSeen > since) ? m : null;
          }, 5000);
        };
        const count = (list: { nodeId: string; connections: number; byTransport: Readonly<Record<string, number>> }[], node: string, t?: string) => {
          const m = list.find((x) => x.nodeId === node);
          return t ? m?.byTransport[t] ?? 0 : m?.connections ?? 0;
        };
        const before = await settled('members before');
        const u = freshUser();
        await s.registryA.admit(u, entry(A, id(), 'polling'), 8);
        await s.registryA.admit(u, entry(A, id(), 'polling'), 8);
        await s.registryA.admit(u, entry(A, id(), 'sse'), 8);
        await s.registryB.admit(u, entry(B, id(), 'plain-websocket'), 8);
        const now = await settled('members after the admits');
        assert.deepEqual(now.map((m) => m.nodeId).sort(), [A, B].sort());
        assert.equal(count(now, A), count(before, A) + 3);
        assert.equal(count(now, B), count(before, B) + 1);
        assert.equal(count(now, A, 'polling'), count(before, A, 'polling') + 2);
        assert.equal(count(now, A, 'sse'), count(before, A, 'sse') + 1);
        assert.equal(count(now, B, 'plain-websocket'), count(before, B, 'plain-websocket') + 1);
        assert.deepEqual(await s.registryB.members().then((m) => m.map((x) => x.nodeId).sort()), [A, B].sort());
      });

      it('setTransport moves a connection to another transport in the counts, and never brings a removed one back', async () => {
        // Counts are as of a node's last heartbeat: read them once one newer than the change is seen.
        const after = async (r: ConnectionRegistry, since: number) => {
          const m = await waitFor('a heartbeat after the change', async () => (await r.members()).find((x) => x.nodeId === A && x.lastSeen > since), 5000);
          return { polling: m.byTransport.polling ?? 0, websocket: m.byTransport.websocket ?? 0 };
        };
        const u = freshUser();
        const e = entry(A, id(), 'polling');
        await s.registryA.admit(u, e, 8);
        const before = await after(s.registryB, Date.now());
        const since = Date.now();
        await s.registryA.setTransport(u, e.connectionId, 'websocket');
        for (const r of [s.registryA, s.registryB]) assert.deepEqual(await after(r, since), { polling: before.polling - 1, websocket: before.websocket + 1 });
        assert.equal(await s.registryB.countFor(u), 1);
        await s.registryA.remove(u, e.connectionId);
        await s.registryA.setTransport(u, e.connectionId, 'websocket');
        assert.equal(await s.registryB.countFor(u), 0);
        assert.equal((await s.registryB.admit(u, entry(B, e.connectionId), 1)).ok, true);
      });
    });

    describe('ClusterBus', () => {
      const ended = (sessionId: string, from: string): BusMessage => ({ type: 'session-ended', from, sessionId });
      const has = (node: string, pred: (m: BusMessage) => boolean) => got.get(node)!.filter(pred).length;
      const sessionIs = (sid: string) => (m: BusMessage) => m.type === 'session-ended' && m.sessionId === sid;

      it('sendToNode reaches that node only', async () => {
        const sid = id();
        await s.busA.sendToNode(B, ended(sid, A));
        await waitFor('B to receive it', () => has(B, sessionIs(sid)) === 1);
        // A marker sent to A afterwards: once A has it, A would also have had the first one.
        const marker = id();
        await s.busB.sendToNode(A, ended(marker, B));
        await waitFor('A to receive the marker', () => has(A, sessionIs(marker)) === 1);
        assert.equal(has(A, sessionIs(sid)), 0);
        assert.equal(has(B, sessionIs(marker)), 0);
        assert.equal(has(B, sessionIs(sid)), 1);
      });

      it('sendToNode keeps the order of one sender', async () => {
        const sids = Array.from({ length: 20 }, () => id());
        for (const sid of sids) await s.busA.sendToNode(B, ended(sid, A));
        await waitFor('all 20 to arrive', () => sids.every((sid) => has(B, sessionIs(sid)) === 1));
        const order = got.get(B)!.flatMap((m) => (m.type === 'session-ended' && sids.includes(m.sessionId) ? [m.sessionId] : []));
        assert.deepEqual(order, sids);
      });

      it('a node can send to itself', async () => {
        const sid = id();
        await s.busA.sendToNode(A, ended(sid, A));
        await waitFor('A to receive its own message', () => has(A, sessionIs(sid)) === 1);
      });

      it('carries a delivery batch intact', async () => {
        const payload = JSON.stringify({ id: '7', name: 'ox:mail:new', args: [{ folder: 'INBOX', subject: 'Grüße ✓' }], namespace: '/' });
        const user = freshUser();
        const msg: BusMessage = { type: 'deliver', from: A, batch: [{ user, pathFilter: '/socket.io/appsuite/*', sourceTokens: [null, 'tok'], payloads: [payload, payload] }] };
        await s.busA.sendToNode(B, msg);
        const received = await waitFor('the batch', () => got.get(B)!.find((m) => m.type === 'deliver' && m.batch[0]?.user === user));
        assert.deepEqual(received, msg);
      });

      it('a handler that throws costs only that handler its message: later handlers and messages still arrive', async () => {
        const bad = id();
        const after: string[] = [];
        s.busB.onMessage((m) => {
          if (m.type === 'session-ended' && m.sessionId === bad) throw new Error('handler bug');
        });
        s.busB.onMessage((m) => {
          if (m.type === 'session-ended') after.push(m.sessionId);
        });
        const next = id();
        await s.busA.sendToNode(B, ended(bad, A));
        await s.busA.sendToNode(B, ended(next, A));
        await waitFor('both messages at the handler after the throwing one', () => after.includes(bad) && after.includes(next));
        assert.deepEqual(after.filter((x) => x === bad || x === next), [bad, next]);
      });

      it('selfCheck is true while the bus runs', async () => {
        assert.equal(await s.busA.selfCheck(2000), true);
        assert.equal(await s.busB.selfCheck(2000), true);
      });

      it('broadcast reaches every node, the sender included, once', async () => {
        const reason = id();
        const isIt = (m: BusMessage) => m.type === 'config-changed' && m.reason === reason;
        await s.busA.broadcast({ type: 'config-changed', from: A, reason });
        await waitFor('both nodes to receive the broadcast', () => has(A, isIt) === 1 && has(B, isIt) === 1);
        await s.busB.broadcast({ type: 'reload', from: B });
        await waitFor('both nodes to receive the reload', () => has(A, (m) => m.type === 'reload') >= 1 && has(B, (m) => m.type === 'reload') >= 1);
        assert.equal(has(A, isIt), 1);
        assert.equal(has(B, isIt), 1);
      });
    });

    describe('stopping', () => {
      it('a stopped registry node leaves: its entries and its membership are gone', async () => {
        const u = freshUser();
        await s.registryA.admit(u, entry(A), 8);
        await s.registryB.admit(u, entry(B), 8);
        await s.registryB.stop();
        await s.registryB.stop(); // idempotent
        assert.deepEqual(await nodesOf(s.lookupA, u), [A]);
        assert.equal(await s.registryA.countFor(u), 1);
        assert.deepEqual((await s.registryA.members()).map((m) => m.nodeId), [A]);
      });

      it('a stopped bus fails its selfCheck', async () => {
        await s.busB.stop();
        assert.equal(await s.busB.selfCheck(300), false);
      });
    });
  });
}

/**
 * The Redis wiring used by every Redis-backed run of the suite: nodes A and B each get their
 * own client, as two processes would; short heartbeats so that membership converges quickly.
 */
export async function redisSubjects(url: string, tag: string): Promise<ContractSubjects> {
  const { createRedisClient } = await import('../../src/adapters/redis/redis-client.js');
  const { RedisSessionStore } = await import('../../src/adapters/redis/redis-session-store.js');
  const { RedisPublishLookup } = await import('../../src/adapters/redis/redis-publish-lookup.js');
  const { RedisConfigStore } = await import('../../src/adapters/redis/redis-config-store.js');
  const { RedisEventLog } = await import('../../src/adapters/redis/redis-event-log.js');
  const { RedisConnectionRegistry } = await import('../../src/adapters/redis/redis-connection-registry.js');
  const { RedisClusterBus } = await import('../../src/adapters/redis/redis-cluster-bus.js');
  const prefix = `t-${tag}:`;
  const a = createRedisClient(url, { role: `${tag}-a` });
  const b = createRedisClient(url, { role: `${tag}-b` });
  const nodeA = `${tag}-a`;
  const nodeB = `${tag}-b`;
  const timing = { heartbeatMs: 200, livenessTtlMs: 1000 };
  const registryA = new RedisConnectionRegistry(a, { prefix, nodeId: nodeA, ...timing });
  const registryB = new RedisConnectionRegistry(b, { prefix, nodeId: nodeB, ...timing });
  return {
    sessions: new RedisSessionStore(a, { prefix }),
    config: new RedisConfigStore(a, { prefix }),
    registryA,
    registryB,
    lookupA: new RedisPublishLookup(a, { prefix, membership: registryA.membership }),
    lookupB: new RedisPublishLookup(b, { prefix, membership: registryB.membership }),
    eventLog: new RedisEventLog(a, { prefix }),
    busA: new RedisClusterBus(a, { prefix, nodeId: nodeA }),
    busB: new RedisClusterBus(b, { prefix, nodeId: nodeB }),
    async cleanup() {
      a.disconnect();
      b.disconnect();
    },
  };
}
