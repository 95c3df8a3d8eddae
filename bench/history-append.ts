/**
 * What the history costs on the publish path and per delivery, measured in isolation:
 * - Redis: CPU of redis-server (and of this process) per published event for the publish lookup
 *   without the history (SET NX + HKEYS: the publish script as it was before the history, kept
 *   here as the baseline) and with it (RedisPublishLookup: + HMGET, HSET, XADD, and the expiries
 *   once a minute per user), both one script per event,
 *   64 in flight, over 1,000 users, alternating rounds.
 * - Delivery: CPU per event written through LocalHub to 1,000 connections, each plain or wrapped in
 *   its ResumeFeed (offset parse, order check).
 * Run: npm run build && node dist/bench/history-append.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedisClient } from '../src/adapters/redis/redis-client.js';
import { RedisConnectionRegistry } from '../src/adapters/redis/redis-connection-registry.js';
import { RedisKeys } from '../src/adapters/redis/keys.js';
import { LuaScript } from '../src/adapters/redis/lua-script.js';
import { RedisPublishLookup } from '../src/adapters/redis/redis-publish-lookup.js';
import { MemoryEventLog } from '../src/adapters/memory/memory-event-log.js';
import { LocalHub } from '../src/delivery/local-hub.js';
import { withId } from '../src/delivery/wire.js';
import { ResumeFeed } from '../src/history/resume-feed.js';
import type { LocalConnection } from '../src/delivery/local-connection.js';
import { cpuMs, killAllChildren, median, startRedis } from './bench-lib.js';

const USERS = 1000;
const N = 20_000;
const IN_FLIGHT = 64;
const ROUNDS = 3;
const LIMITS = { size: 100, ttlMs: 600_000 };

/** The publish lookup's script before the history joined it: the baseline. */
const WITHOUT_HISTORY = new LuaScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {0} end
local r = redis.call('HKEYS', KEYS[1])
table.insert(r, 1, 1)
return r
`);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-bench-hist-'));
  const redis = await startRedis(dir);
  const client = createRedisClient(redis.url, { role: 'bench' });
  const registry = new RedisConnectionRegistry(client, { prefix: 'b:', nodeId: 'bench' });
  const lookup = new RedisPublishLookup(client, { prefix: 'b:', membership: registry.membership });
  const keys = new RedisKeys('b:');
  const body = JSON.stringify({ name: 'ox:mail:new', args: [{ folder: 'INBOX', id: '7', subject: 'Hello there', unread: 3 }], namespace: '/' });
  const user = (i: number) => `${i % USERS}@1`;
  let k = 0;
  const variants: Record<string, (i: number) => Promise<unknown>> = {
    'without history (dedupe + nodes)': (i) => WITHOUT_HISTORY.run(client, [keys.userNodes(user(i)), keys.userDedupe(user(i), `k${k++}`)], [300_000]),
    'with history (dedupe + append + nodes)': (i) => lookup.lookup({ user: user(i), dedupeKey: `k${k++}`, dedupeTtlMs: 300_000, append: { body, pathFilter: null, sourceToken: null }, limits: LIMITS }),
  };
  const results: Record<string, { redis: number[]; node: number[] }> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(variants)) {
      for (let i = 0; i < 2000; i++) await fn(i); // warm-up: scripts loaded, streams exist
      const r0 = cpuMs(redis.pid);
      const c0 = process.cpuUsage();
      let next = 0;
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        while (next < N) await fn(next++);
      }));
      const c = process.cpuUsage(c0);
      (results[name] ??= { redis: [], node: [] }).redis.push(((cpuMs(redis.pid) - r0) * 1000) / N);
      results[name].node.push((c.user + c.system) / N);
    }
  }
  client.disconnect();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });

  // Delivery: one hub, 1,000 users with one connection each; 200 events per user.
  const deliveries: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const wrapped of [false, true]) {
      const hub = new LocalHub();
      const log = new MemoryEventLog();
      let sink = 0;
      const epochs: string[] = [];
      for (let u = 0; u < USERS; u++) {
        const feed = new ResumeFeed({ log, limits: () => LIMITS, scope: { user: `${u}@1`, path: '/p', connectionId: `c${u}` } });
        const out = { event: () => void sink++, notRecovered: () => undefined };
        if (wrapped) {
          await feed.prepare(null);
          feed.attach(out);
        }
        epochs.push((feed.position() ?? 'e0-0').split('-')[0]);
        const conn: LocalConnection = { id: `c${u}`, user: `${u}@1`, sessionId: 's', sessionExpiresAt: 0, path: '/p', transport: 'plain-websocket', send: wrapped ? (e, j) => feed.push(e, j) : () => void sink++, hold: () => undefined, release: () => undefined, close: () => undefined };
        hub.add(conn);
      }
      const c0 = process.cpuUsage();
      for (let s = 1; s <= 200; s++) {
        for (let u = 0; u < USERS; u++) {
          const id = `${epochs[u]}-${s}`;
          hub.deliver(`${u}@1`, { id, name: 'ox:mail:new', args: [], namespace: '/' }, withId(id, body), null, null);
        }
      }
      const c = process.cpuUsage(c0);
      (deliveries[wrapped ? 'through ResumeFeed' : 'plain'] ??= []).push(((c.user + c.system) / (200 * USERS)) * 1000);
      if (sink !== 200 * USERS) throw new Error(`delivered ${sink}, expected ${200 * USERS}`);
    }
  }

  console.log(`publish lookup, ${N} events per round over ${USERS} users, ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds`);
  console.log('| variant | redis-server CPU per event (µs) | this process (client) CPU per event (µs) |');
  console.log('|---|---:|---:|');
  for (const [name, r] of Object.entries(results)) console.log(`| ${name} | ${median(r.redis).toFixed(1)} | ${median(r.node).toFixed(1)} |`);
  console.log(`\ndelivery through LocalHub to ${USERS} connections, 200 events each, median of ${ROUNDS} rounds`);
  console.log('| connection | CPU per delivery (ns) |');
  console.log('|---|---:|');
  for (const [name, xs] of Object.entries(deliveries)) console.log(`| ${name} | ${median(xs).toFixed(0)} |`);
}

main().catch((e) => {
  console.error(e);
  killAllChildren();
  process.exit(1);
});
