import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { UserKey } from '../../src/domain/types.js';
import type { Offset } from '../../src/history/offset.js';
import type { AppendEntry, EventLog, HistoryLimits, LogRead } from '../../src/ports/event-log.js';
import { waitFor } from '../helpers/wait.js';

/**
 * What every EventLog must guarantee (memory, standalone Redis, Redis Cluster, Sentinel). The
 * append on the publish path, inside the publish lookup, is in the PublishLookup contract.
 * `logB` is a second node's view of the same log (its own client on Redis).
 */
export interface EventLogSubjects {
  readonly log: EventLog;
  readonly logB: EventLog;
  /** The log after it was lost for `user` (the store restarted empty, or a node restarted). */
  lose(user: UserKey): Promise<EventLog>;
  cleanup(): Promise<void>;
}

let seq = 0;
const ctx = 1 + Math.floor(Math.random() * 1_000_000);
const freshUser = (): UserKey => `${++seq}@${ctx}`;
const LIMITS: HistoryLimits = { size: 100, ttlMs: 600_000 };
const entry = (n: number, pathFilter: string | null = null, sourceToken: string | null = null): AppendEntry => ({ body: JSON.stringify({ name: 'e', args: [n], namespace: '/' }), pathFilter, sourceToken });
const argsOf = (r: LogRead): unknown[] => {
  assert.equal(r.recovered, true, JSON.stringify(r));
  return r.recovered ? r.entries.map((e) => (JSON.parse(e.body) as { args: unknown[] }).args[0]) : [];
};

export function eventLogContract(name: string, make: () => Promise<EventLogSubjects>): void {
  describe(`event log contract: ${name}`, () => {
    let s: EventLogSubjects;

    before(async () => {
      s = await make();
      for (const c of [s.log, s.logB]) await c.start();
    });
    after(async () => {
      if (!s) return;
      for (const c of [s.logB, s.log]) await c.stop().catch(() => {});
      await s.cleanup();
    });

    it('counts 1, 2, 3 within one epoch and replays what came after an offset, in order, with its rules', async () => {
      const u = freshUser();
      const head = await s.log.read(u, null, LIMITS);
      assert.deepEqual(head, { recovered: true, epoch: head.epoch, last: 0, entries: [] });
      assert.match(head.epoch, /^e[0-9a-z]+$/);
      const a = await s.log.append(u, entry(1, '/socket.io/*', 'tok'), LIMITS);
      const b = await s.logB.append(u, entry(2), LIMITS);
      const c = await s.log.append(u, entry(3), LIMITS);
      assert.deepEqual([a, b, c], [1, 2, 3].map((n) => ({ epoch: head.epoch, seq: n })));
      const all = await s.logB.read(u, { epoch: head.epoch, seq: 0 }, LIMITS);
      assert.deepEqual(argsOf(all), [1, 2, 3]);
      assert.ok(all.recovered);
      assert.deepEqual(all.entries.map((e) => [e.seq, e.pathFilter, e.sourceToken]), [[1, '/socket.io/*', 'tok'], [2, null, null], [3, null, null]]);
      assert.ok(all.entries.every((e) => Math.abs(e.at - Date.now()) < 60_000));
      assert.deepEqual(argsOf(await s.log.read(u, a, LIMITS)), [2, 3]);
      assert.deepEqual(await s.log.read(u, c, LIMITS), { recovered: true, epoch: head.epoch, last: 3, entries: [] });
    });

    it('another user has another log', async () => {
      const u = freshUser();
      const v = freshUser();
      const o = await s.log.append(u, entry(1), LIMITS);
      const r = await s.log.read(v, { epoch: o.epoch, seq: 0 }, LIMITS);
      assert.equal(r.recovered && r.entries.length, false, 'no entry of another user');
      assert.equal((await s.log.read(v, null, LIMITS)).last, 0);
    });

    it('says why it cannot replay: another epoch, ahead of the log, trimmed by size', async () => {
      const u = freshUser();
      let last!: Offset;
      for (let i = 1; i <= 5; i++) last = await s.log.append(u, entry(i), { ...LIMITS, size: 3 });
      const limits = { ...LIMITS, size: 3 };
      const at = (n: number) => ({ epoch: last.epoch, seq: n });
      assert.deepEqual(await s.log.read(u, { epoch: 'eother', seq: 1 }, limits), { recovered: false, reason: 'epoch', epoch: last.epoch, last: 5 });
      assert.deepEqual(await s.log.read(u, at(6), limits), { recovered: false, reason: 'ahead', epoch: last.epoch, last: 5 });
      assert.deepEqual(await s.log.read(u, at(1), limits), { recovered: false, reason: 'trimmed', epoch: last.epoch, last: 5 });
      assert.deepEqual(argsOf(await s.log.read(u, at(2), limits)), [3, 4, 5]);
    });

    it('keeps no entry older than the age bound, and none at all with size 0, while offsets go on', async () => {
      const u = freshUser();
      const short = { size: 100, ttlMs: 300 };
      const first = await s.log.append(u, entry(1), short);
      assert.deepEqual(argsOf(await s.log.read(u, { ...first, seq: 0 }, short)), [1]);
      await waitFor('the entry to age out', async () => {
        const r = await s.log.read(u, { ...first, seq: 0 }, short);
        return !r.recovered && r.reason === 'trimmed';
      }, 5000);
      const none = { size: 0, ttlMs: 600_000 };
      const second = await s.log.append(u, entry(2), none);
      assert.deepEqual(second, { epoch: first.epoch, seq: 2 });
      assert.equal((await s.log.read(u, first, none)).recovered, false);
      assert.deepEqual(await s.log.read(u, second, none), { recovered: true, epoch: first.epoch, last: 2, entries: [] });
    });

    it('gives concurrent appends from two nodes distinct, gapless offsets', async () => {
      const u = freshUser();
      const got = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? s.log : s.logB).append(u, entry(i), LIMITS)));
      assert.equal(new Set(got.map((o) => o.epoch)).size, 1);
      assert.deepEqual(got.map((o) => o.seq).sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i + 1));
      assert.equal(argsOf(await s.log.read(u, { epoch: got[0].epoch, seq: 0 }, LIMITS)).length, 40);
    });

    it('a lost log starts a new epoch: old offsets are "epoch", never a position in the new one', async () => {
      const u = freshUser();
      let old!: Offset;
      for (let i = 1; i <= 3; i++) old = await s.log.append(u, entry(i), LIMITS);
      const after = await s.lose(u);
      const next = await after.append(u, entry(4), LIMITS);
      assert.notEqual(next.epoch, old.epoch);
      assert.equal(next.seq, 1);
      const r = await after.read(u, old, LIMITS);
      assert.deepEqual(r, { recovered: false, reason: 'epoch', epoch: next.epoch, last: 1 });
      assert.deepEqual(argsOf(await after.read(u, { epoch: next.epoch, seq: 0 }, LIMITS)), [4]);
    });
  });
}

/** The Redis wiring: two clients (two nodes) on one log; `lose` deletes the user's keys, as an empty restart would. */
export async function redisEventLogSubjects(url: string, tag: string): Promise<EventLogSubjects> {
  const { createRedisClient } = await import('../../src/adapters/redis/redis-client.js');
  const { RedisEventLog } = await import('../../src/adapters/redis/redis-event-log.js');
  const { RedisKeys } = await import('../../src/adapters/redis/keys.js');
  const prefix = `t-h${tag}:`;
  const a = createRedisClient(url, { role: `h${tag}-a` });
  const b = createRedisClient(url, { role: `h${tag}-b` });
  const keys = new RedisKeys(prefix);
  const log = new RedisEventLog(a, { prefix });
  return {
    log,
    logB: new RedisEventLog(b, { prefix }),
    async lose(user) {
      await a.del(keys.userHistory(user), keys.userHistoryMeta(user));
      return log;
    },
    async cleanup() {
      a.disconnect();
      b.disconnect();
    },
  };
}
