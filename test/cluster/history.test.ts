// History and resume across three `tidings serve` processes on one real Redis: a long-poll that
// hops between nodes with its last ETag, SSE resumed on another node with Last-Event-ID, a plain
// WebSocket resumed elsewhere while events keep coming, Redis restarted empty ("not recovered",
// then live again), and a fuzz of offsets.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectPlainWs, login, push, type Login } from '../helpers/node.js';
import { openSse, poll } from '../helpers/history-clients.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { isReady, startCluster, type Cluster } from './fixture.js';

const seqOf = (id: string): number => Number(id.split('-')[1]);
const epochOf = (id: string): string => id.split('-')[0];

describe('history and resume across nodes on one Redis', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  let urls: string[];
  let l: Login;
  const open: { close(): void }[] = [];

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, {
      'com.openexchange.websockets.grizzly.remote.delayDuration': 50,
      'com.openexchange.websockets.grizzly.remote.maxDelayDuration': 200,
      'com.openexchange.websockets.grizzly.remote.timerFrequency': 50,
      'tidings.longpoll.holdSeconds': 2,
    }, 'h');
    urls = cluster.urls;
    l = await login(urls[0], 'alice@example.com', 'alice-pw');
  });
  after(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
    await redis?.stop();
  });

  const publish = (i: number, data: unknown) => push(urls[i % 3], { context: 1, user: 3, event: 'h', data });

  it('a poll that alternates between nodes with the last ETag, while pushes alternate, gets every event once and in order', async () => {
    const head = await poll(urls[0], l);
    let etag = head.etag!;
    const sent: string[] = [];
    let stop = false;
    const publishing = (async () => {
      for (let i = 0; !stop && i < 60; i++) {
        const r = await publish(i, i);
        assert.equal(r.status, 202);
        sent.push(r.json.id);
      }
    })();
    const got: any[] = [];
    for (let k = 0; got.length < 60; k++) {
      const r = await poll(urls[k % 3], l, { ifNoneMatch: `"${etag}"` });
      assert.ok(r.status === 200 || r.status === 304, `poll answered ${r.status}: ${JSON.stringify(r.body)}`);
      assert.ok(r.etag, 'every answer has an ETag');
      got.push(...r.events);
      etag = r.etag!;
      assert.ok(k < 500, 'the polls converge');
    }
    stop = true;
    await publishing;
    assert.deepEqual(got.map((e) => e.id), sent);
    assert.deepEqual(got.map((e) => e.args[0]), Array.from({ length: 60 }, (_, i) => i));
    assert.deepEqual(got.map((e) => seqOf(e.id)), Array.from({ length: 60 }, (_, i) => seqOf(head.etag!) + 1 + i));
  });

  it('a held poll is registered like a connection, so a publish on another node reaches it live; its entry goes when it ends', async () => {
    const entries = async () => Object.values(toObject((await redisCommand(redis!.port, 'HGETALL', 'tidings:{u:3@1}:c')) as string[])).map((e) => JSON.parse(e));
    const head = (await poll(urls[0], l, { since: 'eother-1' })).etag!;
    const held = poll(urls[1], l, { since: head });
    await waitFor('the poll in the registry', async () => (await entries()).some((e) => e.transport === 'longpoll' && e.nodeId === cluster!.ids[1]));
    const p = await publish(0, 'live');
    const a = await held;
    assert.deepEqual(a.events.map((e) => e.id), [p.json.id]);
    await waitFor('the entry to be gone', async () => (await entries()).length === 0);
  });

  it('SSE resumed on another node with Last-Event-ID gets exactly what it missed, then live', async () => {
    const a = await openSse(urls[0], l);
    open.push(a);
    const p = [await publish(1, 'a'), await publish(2, 'b')];
    await waitFor('both on node 1', () => a.messages.length === 2);
    a.close();
    const missed = [await publish(0, 'c'), await publish(2, 'd'), await publish(1, 'e')];
    const b = await openSse(urls[1], l, { lastEventId: a.messages[1].id! });
    open.push(b);
    await waitFor('the missed three on node 2', () => b.messages.length === 3);
    assert.deepEqual(b.messages.map((m) => m.id), missed.map((r) => r.json.id));
    const live = await publish(2, 'f');
    await waitFor('a live one from node 3', () => b.messages.length === 4);
    assert.equal(b.messages[3].id, live.json.id);
    assert.deepEqual(a.messages.map((m) => m.id), p.map((r) => r.json.id));
    b.close();
  });

  it('a plain WebSocket resumed on another node while events keep coming: no gap, no duplicate', async () => {
    const first = await connectPlainWs(urls[0], l, { path: '/hop' });
    const p0 = await publish(1, 'x');
    await waitFor('the first frame', () => first.frames.length === 1);
    first.ws.close();
    let stop = false;
    let k = 0;
    const publishing = (async () => {
      while (!stop) await publish(k, `s${k++}`);
    })();
    await waitFor('events published while disconnected', () => k >= 15);
    const again = await connectPlainWs(urls[2], l, { path: '/hop', since: p0.json.id });
    open.push(again.ws);
    await waitFor('more, live', () => k >= 45);
    stop = true;
    await publishing;
    const end = await publish(0, 'end');
    await waitFor('the end marker', () => again.frames.at(-1)?.id === end.json.id, 10_000);
    assert.deepEqual(again.frames.map((f) => f.args[0]), [...Array.from({ length: k }, (_, i) => `s${i}`), 'end']);
    assert.deepEqual(again.frames.map((f) => seqOf(f.id)), Array.from({ length: k + 1 }, (_, i) => seqOf(p0.json.id) + 1 + i));
  });

  it('a fuzz of offsets: never a 5xx; garbage is 400 TIDINGS_BAD_OFFSET, well-formed ones an answer', async () => {
    const known = (await publish(0, 'fuzz')).json.id as string;
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const chars = 'abcdefxyz0123456789-_.~ "\'%/\\:,;*é';
    const cases: string[] = [];
    for (let i = 0; i < 150; i++) cases.push(Array.from({ length: 1 + rnd(20) }, () => chars[rnd(chars.length)]).join(''));
    for (let i = 0; i < 30; i++) cases.push(`${epochOf(known)}-${rnd(3) === 0 ? seqOf(known) + 1 + rnd(1000) : rnd(seqOf(known))}`, `e${rnd(1e9).toString(36)}-${rnd(100)}`);
    let bad = 0;
    let good = 0;
    for (const [i, c] of cases.entries()) {
      const r = await poll(urls[i % 3], l, { since: c });
      if (r.status === 400) {
        assert.equal(r.body.error.code, 'TIDINGS_BAD_OFFSET', c);
        bad++;
        continue;
      }
      assert.ok(r.status === 200 || r.status === 304, `${JSON.stringify(c)} → ${r.status} ${JSON.stringify(r.body)}`);
      assert.match(c, /^[a-z0-9]{1,40}-\d{1,15}$/, `${JSON.stringify(c)} is not an offset, yet answered ${r.status}`);
      assert.ok(r.etag, c);
      good++;
    }
    assert.ok(bad > 100 && good >= 60, `bad ${bad}, good ${good}`);
  });

  it('Redis restarted empty: an old offset is "not recovered" on every node and transport, then events flow again', async () => {
    const before = (await publish(0, 'before')).json.id as string;
    await redis!.restart();
    await waitFor('every node ready again', async () => (await Promise.all(urls.map(isReady))).every(Boolean), 20_000, 100);
    // The session lived in Redis too: log in again.
    l = await login(urls[0], 'alice@example.com', 'alice-pw');
    const r = await poll(urls[1], l, { since: before });
    assert.equal(r.status, 200);
    assert.equal(r.events.length, 1);
    assert.equal(r.events[0].name, 'tidings:not-recovered');
    assert.deepEqual(r.events[0].args, [{ reason: 'epoch' }]);
    assert.notEqual(epochOf(r.etag!), epochOf(before));
    const sse = await openSse(urls[2], l, { lastEventId: before });
    open.push(sse);
    await waitFor('not recovered over SSE', () => sse.messages.length === 1);
    assert.equal(sse.messages[0].data.name, 'tidings:not-recovered');
    const ws = await connectPlainWs(urls[0], l, { path: '/after', since: before });
    open.push(ws.ws);
    await waitFor('not recovered over the plain WebSocket', () => ws.frames.length === 1);
    assert.equal(ws.frames[0].name, 'tidings:not-recovered');
    const held = poll(urls[0], l, { since: r.etag! });
    const live = await publish(1, 'after');
    assert.equal(epochOf(live.json.id), epochOf(r.etag!));
    assert.deepEqual((await held).events.map((e) => e.id), [live.json.id]);
    await waitFor('live over SSE and WebSocket', () => sse.messages.at(-1)?.id === live.json.id && ws.frames.at(-1)?.id === live.json.id);
  });
});

function toObject(flat: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) o[flat[i]] = flat[i + 1];
  return o;
}
