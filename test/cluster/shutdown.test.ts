/**
 * Issue 9 item 10 across two processes on one real Redis: a node stopping under SIGTERM keeps its
 * sockets until the events other nodes accepted for them before the signal have arrived through
 * their remote buffers, and still exits 0 within the grace time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { makeConfigDir } from '../helpers/config-dir.js';
import { connectPlainWs, connectSocketIo, login, type PlainWs } from '../helpers/node.js';
import { startProcessNode } from '../helpers/process-node.js';
import { Agent, pushOnce } from '../helpers/push-flood.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';

const GRACE_MS = 8000;

describe('SIGTERM in a cluster', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  it('events accepted on another node before SIGTERM reach the stopping node\'s sockets', async () => {
    const props = { 'tidings.redis.url': redis.url, 'tidings.shutdown.graceMs': GRACE_MS, 'tidings.login.deviceKey': 'a-shared-test-key-0123456789' };
    const cfgA = makeConfigDir({ properties: props });
    const cfgB = makeConfigDir({ properties: props });
    const a = await startProcessNode(cfgA.dir);
    const b = await startProcessNode(cfgB.dir);
    const clients: (Socket | PlainWs)[] = [];
    try {
      const l = await login(b.url, 'alice@example.com', 'alice-pw');
      const got: Set<number>[] = [];
      for (const transport of ['polling', 'websocket'] as const) {
        const s = await connectSocketIo(b.url, l, { transports: [transport] });
        const seen = new Set<number>();
        s.on('flood', (d: { seq: number }) => seen.add(d.seq));
        got.push(seen);
        clients.push(s);
      }
      const ws = await connectPlainWs(b.url, l);
      const seenWs = new Set<number>();
      ws.ws.on('message', (data) => {
        const f = JSON.parse(String(data));
        if (f.name === 'flood') seenWs.add(f.args[0].seq);
      });
      got.push(seenWs);
      clients.push(ws);

      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      const before: number[] = [];
      let sigtermAt = 0;
      let seq = 0;
      let bGone = false;
      void b.exited.then(() => (bGone = true));
      const pusher = async () => {
        while (!bGone) {
          const n = seq++;
          const r = await pushOnce(a.url, agent, { context: 1, user: 3, event: 'flood', data: { seq: n } });
          assert.ok('status' in r && r.status === 202, JSON.stringify(r));
          if (sigtermAt === 0) before.push(n);
          if (before.length === 200 && sigtermAt === 0) {
            sigtermAt = Date.now();
            b.kill('SIGTERM');
          }
        }
      };
      await Promise.all(Array.from({ length: 4 }, pusher));
      const exit = await b.exited;
      const took = Date.now() - sigtermAt;
      agent.destroy();
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(took < GRACE_MS + 1000, `exited ${took} ms after SIGTERM`);
      await waitFor('the sockets to be closed', () => clients.every((c) => ('ws' in c ? c.ws.readyState === c.ws.CLOSED : !c.connected)));
      for (const [i, seen] of got.entries()) {
        const missing = before.filter((n) => !seen.has(n));
        assert.deepEqual(missing, [], `socket ${i} missed ${missing.length} of ${before.length} events accepted before SIGTERM`);
      }
    } finally {
      for (const c of clients) ('ws' in c ? c.ws.terminate() : c.close());
      a.kill('SIGKILL');
      b.kill('SIGKILL');
      await Promise.all([a.exited, b.exited]);
      cfgA.remove();
      cfgB.remove();
    }
  });
});
