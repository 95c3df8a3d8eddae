import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectPlainWs, connectSocketIo, login } from '../helpers/node.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { startCluster, type Cluster } from './fixture.js';

// The shortest lifetime the schema allows, so the session really expires during the test.
const LIFETIME_S = 10;

describe('a session that expires closes its sockets on every node within 1 s', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, { 'tidings.session.lifetimeSeconds': LIFETIME_S }, 'e');
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  it('log in on node 1, sockets on nodes 2 and 3; nobody logs out', async () => {
    const [u1, u2, u3] = cluster!.urls;
    const l = await login(u1, 'alice@example.com', 'alice-pw');
    const ws = await connectPlainWs(u2, l, { path: '/exp' });
    const sio = await connectSocketIo(u3, l, { transports: ['websocket'] });
    // The expiry in force once both are admitted (a connection may have slid it), read from Redis itself.
    const pttl = Number(await redisCommand(redis!.port, 'PTTL', `tidings:s:${l.session}`));
    assert.ok(pttl > 0 && pttl <= LIFETIME_S * 1000, `session PTTL ${pttl}`);
    const expiresAt = Date.now() + pttl;

    const wsClosed = new Promise<{ at: number; code: number }>((res) => ws.ws.once('close', (code) => res({ at: Date.now(), code })));
    const sioInvalid = new Promise<number>((res) => sio.once('session:invalid', () => res(Date.now())));
    const sioGone = new Promise<number>((res) => sio.once('disconnect', () => res(Date.now())));
    const deadline = new Promise<never>((_, rej) => setTimeout(() => rej(new Error('sockets still open 2 s after the session expired')), pttl + 2000));
    const [w, invalidAt, goneAt] = await Promise.race([Promise.all([wsClosed, sioInvalid, sioGone]), deadline]);

    assert.equal(w.code, 4401);
    assert.ok(ws.frames.some((f) => f.name === 'session:invalid'), 'the plain WebSocket is told why');
    // Clocks: Date.now() here and on the nodes is the same machine's clock; allow 50 ms for the PTTL read.
    for (const [what, at] of [['plain WebSocket on node 2', w.at], ['Socket.IO session:invalid on node 3', invalidAt], ['Socket.IO disconnect on node 3', goneAt]] as const) {
      assert.ok(at >= expiresAt - 50, `${what} closed ${expiresAt - at} ms before the session expired`);
      assert.ok(at - expiresAt <= 1000, `${what} closed ${at - expiresAt} ms after the session expired`);
    }
  });
});
