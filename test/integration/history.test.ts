// Resume on every transport on one node (memory backends): long-poll, SSE, plain WebSocket and
// Socket.IO replay exactly what the client missed, say "not recovered" when they cannot, apply
// path filters and sourceToken to replays, and answer garbage offsets with 400 TIDINGS_BAD_OFFSET.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { connectPlainWs, connectSocketIo, login, push, startNode, type Login, type TestNode } from '../helpers/node.js';
import { openSse, poll } from '../helpers/history-clients.js';
import { waitFor } from '../helpers/wait.js';
import { DEMO_DIRECTORY } from '../helpers/config-dir.js';
import { memoryBackends } from '../../src/app/backends.js';
import type { EventLog } from '../../src/ports/event-log.js';

const OFFSET = /^e[0-9a-z]+-\d+$/;
/** Offsets that are not offsets: each must be a 400 with its own code, never a 5xx or an empty answer. */
export const GARBAGE = ['x', '-', '1', 'abc-', '-5', 'e1-1.5', 'e1--1', 'E1-1', 'e1-1-1', 'e1-99999999999999999', 'é-1', 'e1 -1', 'e1-0x1', '"', 'a'.repeat(41) + '-1', 'e1-1\u0000', '*', '../e1-1', 'e1-1,e2-2'];

const publish = (url: string, data: unknown, extra: Record<string, unknown> = {}) => push(url, { context: 1, user: 3, event: 'h', data, ...extra });

describe('resume and history on one node', () => {
  let n: TestNode;
  let l: Login;
  const open: { close(): void }[] = [];

  before(async () => {
    n = await startNode({
      properties: { 'tidings.longpoll.holdSeconds': 1, 'tidings.sse.heartbeatMs': 1000 },
      // dave's WebSockets are switched off: long-poll and SSE keep working for him.
      directory: DEMO_DIRECTORY + '  - { id: 7, context: 1, login: gus@example.com, password: "{PLAIN}gus-pw", config: { com.openexchange.websockets.enabled: false } }\n',
    });
    l = await login(n.url, 'alice@example.com', 'alice-pw');
  });
  after(async () => {
    for (const s of open) s.close();
    await n.stop();
  });

  describe('long-poll', () => {
    it('without an offset holds until an event arrives, answers it with its offset as ETag; the ETag misses nothing and repeats nothing', async () => {
      const held = poll(n.url, l);
      // The poll is registered like a connection while it is held, so the publish reaches it.
      await waitFor('the poll to be held', () => n.node.hub.has('3@1'));
      const p = await publish(n.url, 1);
      const a = await held;
      assert.equal(a.status, 200);
      assert.equal(a.headers.get('cache-control'), 'no-store');
      assert.deepEqual(a.events, [{ name: 'h', args: [1], namespace: '/', id: p.json.id }]);
      assert.equal(a.etag, p.json.id);
      assert.match(a.etag!, OFFSET);
      // Published between two polls: the next poll with the ETag gets them at once, in order.
      const p2 = await publish(n.url, 2);
      const p3 = await publish(n.url, 3);
      const b = await poll(n.url, l, { ifNoneMatch: `"${a.etag}"` });
      assert.deepEqual(b.events.map((e) => e.id), [p2.json.id, p3.json.id]);
      assert.equal(b.etag, p3.json.id);
      // Nothing new: held for tidings.longpoll.holdSeconds, then 304 with the same ETag.
      const c = await poll(n.url, l, { since: b.etag! });
      assert.equal(c.status, 304);
      assert.equal(c.etag, b.etag);
      assert.equal(n.node.hub.has('3@1'), false, 'the poll left the hub when it was answered');
    });

    it('a first poll that times out gives the head as ETag, so nothing published before the next poll is lost', async () => {
      const b = await login(n.url, 'bob@example.com', 'bob-pw');
      const first = await poll(n.url, b);
      assert.equal(first.status, 304);
      assert.match(first.etag ?? '', OFFSET);
      const p = await push(n.url, { context: 1, user: 4, event: 'between', data: 0 });
      const next = await poll(n.url, b, { since: first.etag! });
      assert.deepEqual(next.events.map((e) => e.id), [p.json.id]);
    });

    it('passes the gate (session, cookie, Origin) but not the WebSockets switch', async () => {
      assert.equal((await poll(n.url, { ...l, session: 'nope' })).body.error.code, 'TIDINGS_SESSION_UNKNOWN');
      assert.equal((await poll(n.url, l, { cookie: null })).body.error.code, 'TIDINGS_SECRET_MISSING');
      assert.equal((await poll(n.url, l, { origin: 'https://evil.example' })).body.error.code, 'TIDINGS_ORIGIN_FORBIDDEN');
      const gus = await login(n.url, 'gus@example.com', 'gus-pw');
      await assert.rejects(connectPlainWs(n.url, gus), (e: any) => e.status === 403 && e.body.error.code === 'TIDINGS_WEBSOCKETS_DISABLED');
      const held = poll(n.url, gus);
      await waitFor('gus\'s poll to be held', () => n.node.hub.has('7@1'));
      const p = await push(n.url, { context: 1, user: 7, event: 'for-gus', data: 1 });
      assert.deepEqual((await held).events.map((e) => e.id), [p.json.id]);
    });

    it('applies path filters and sourceToken to the replay as to live events; a user never sees another user\'s history', async () => {
      const head = (await poll(n.url, l, { path: '/socket.io/appsuite' })).etag!;
      await publish(n.url, 'other-path', { pathFilter: '/websockets/*' });
      const mine = await publish(n.url, 'my-path', { pathFilter: '/socket.io/appsuite/*' });
      await publish(n.url, 'echo', { sourceToken: 'tab-1' });
      const all = await publish(n.url, 'all');
      await push(n.url, { context: 1, user: 4, event: 'h', data: 'bob' });
      await push(n.url, { context: 2, user: 3, event: 'h', data: 'carol' });
      const r = await poll(n.url, l, { since: head, path: '/socket.io/appsuite', connection: 'tab-1' });
      assert.deepEqual(r.events.map((e) => e.args[0]), ['my-path', 'all']);
      assert.equal(r.etag, all.json.id);
      assert.deepEqual(mine.json.id.split('-')[0], all.json.id.split('-')[0]);
    });

    it('an offset from another epoch, or ahead of the log, is answered "not recovered" with the offset to go on from', async () => {
      const before = await replays(n.url);
      const p = await publish(n.url, 'x');
      const [epoch, seq] = [p.json.id.split('-')[0], Number(p.json.id.split('-')[1])];
      for (const [since, reason] of [['eother-3', 'epoch'], [`${epoch}-${seq + 5}`, 'ahead']]) {
        const r = await poll(n.url, l, { since });
        assert.equal(r.status, 200);
        assert.deepEqual(r.events, [{ name: 'tidings:not-recovered', args: [{ reason }], namespace: '/', id: p.json.id }]);
        assert.equal(r.etag, p.json.id);
      }
      // Each answer is counted; a resume that replays is counted as recovered.
      await poll(n.url, l, { since: `${epoch}-${seq - 1}` });
      const now = await replays(n.url);
      assert.equal(now.not_recovered - before.not_recovered, 2);
      assert.equal(now.recovered - before.recovered, 1);
    });

    it('a garbage offset is 400 TIDINGS_BAD_OFFSET, from ?since= and from If-None-Match, and holds no slot', async () => {
      for (const g of GARBAGE) {
        for (const o of [{ since: g }, { ifNoneMatch: g }]) {
          if (o.ifNoneMatch !== undefined && /[\u0000-\u001f\u0080-\uffff]/.test(g)) continue; // not sendable as a header
          const r = await poll(n.url, l, o);
          assert.equal(r.status, 400, `${JSON.stringify(o)} → ${r.status}`);
          assert.equal(r.body.error.code, 'TIDINGS_BAD_OFFSET', JSON.stringify(o));
          assert.match(r.body.error.message, /not an offset/);
        }
      }
      assert.equal(n.node.hub.has('3@1'), false);
    });

    it('a bad path= is 400 naming the parameter', async () => {
      for (const bad of ['nope', '/a//b', '/a/', '/a b', `/${'x'.repeat(300)}`]) {
        const r = await poll(n.url, l, { path: bad });
        assert.equal(r.status, 400, bad);
        assert.match(r.body.error.message, /'path'/);
      }
    });
  });

  describe('Server-Sent Events', () => {
    it('streams events with id: lines, a retry: hint, heartbeats, unbuffered; Last-Event-ID resumes exactly', async () => {
      const s = await openSse(n.url, l);
      open.push(s);
      assert.equal(s.status, 200);
      assert.match(s.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(s.headers.get('x-accel-buffering'), 'no');
      assert.equal(s.headers.get('cache-control'), 'no-store');
      await waitFor('the retry hint', () => /^retry: \d+\n\n/.test(s.text()));
      const p1 = await publish(n.url, 1);
      const p2 = await publish(n.url, 2);
      await waitFor('two messages', () => s.messages.length === 2);
      assert.deepEqual(s.messages, [
        { id: p1.json.id, data: { name: 'h', args: [1], namespace: '/', id: p1.json.id } },
        { id: p2.json.id, data: { name: 'h', args: [2], namespace: '/', id: p2.json.id } },
      ]);
      await waitFor('a heartbeat comment', () => s.text().includes('\n: keep-alive\n\n'), 5000);
      s.close();
      await waitFor('the stream to leave the hub', () => !n.node.hub.has('3@1'));
      const p3 = await publish(n.url, 3);
      const p4 = await publish(n.url, 4);
      const r = await openSse(n.url, l, { lastEventId: p2.json.id });
      open.push(r);
      await waitFor('the missed two', () => r.messages.length === 2);
      assert.deepEqual(r.messages.map((m) => m.id), [p3.json.id, p4.json.id]);
      const p5 = await publish(n.url, 5);
      await waitFor('then live', () => r.messages.length === 3);
      assert.equal(r.messages[2].id, p5.json.id);
      r.close();
    });

    it('"not recovered" is a message with the offset to go on from as its id; garbage Last-Event-ID is 400', async () => {
      const s = await openSse(n.url, l, { lastEventId: 'eother-1' });
      open.push(s);
      await waitFor('the not-recovered message', () => s.messages.length === 1);
      assert.equal(s.messages[0].data.name, 'tidings:not-recovered');
      assert.deepEqual(s.messages[0].data.args, [{ reason: 'epoch' }]);
      assert.match(s.messages[0].id ?? '', OFFSET);
      assert.equal(s.messages[0].id, s.messages[0].data.id);
      s.close();
      const r = await fetch(`${n.url}/api/push/events?session=${l.session}`, { headers: { cookie: l.cookie, 'last-event-id': 'garbage' } });
      assert.equal(r.status, 400);
      assert.equal(((await r.json()) as any).error.code, 'TIDINGS_BAD_OFFSET');
    });
  });

  describe('plain WebSocket ?since=', () => {
    it('replays what was missed, then live; a garbage since is refused before the upgrade', async () => {
      const first = await connectPlainWs(n.url, l, { path: '/r' });
      const p1 = await publish(n.url, 1);
      await waitFor('the first frame', () => first.frames.length === 1);
      first.ws.close();
      await waitFor('the socket to leave the hub', () => !n.node.hub.has('3@1'));
      const p2 = await publish(n.url, 2);
      const p3 = await publish(n.url, 3);
      const again = await connectPlainWsSince(n.url, l, p1.json.id);
      open.push(again.ws);
      await waitFor('the replay', () => again.frames.length === 2);
      const p4 = await publish(n.url, 4);
      await waitFor('then live', () => again.frames.length === 3);
      assert.deepEqual(again.frames.map((f) => f.id), [p2.json.id, p3.json.id, p4.json.id]);
      again.ws.close();
      const notRec = await connectPlainWsSince(n.url, l, 'eother-9');
      open.push(notRec.ws);
      await waitFor('the not-recovered frame', () => notRec.frames.length === 1);
      assert.deepEqual(notRec.frames[0], { name: 'tidings:not-recovered', args: [{ reason: 'epoch' }], namespace: '/', id: p4.json.id });
      notRec.ws.close();
      for (const g of ['e1-', 'junk', 'e1-1-1']) {
        await assert.rejects(connectPlainWsSince(n.url, l, g), (e: any) => e.status === 400 && e.body.error.code === 'TIDINGS_BAD_OFFSET');
      }
    });
  });

  describe('Socket.IO auth.offset', () => {
    it('every event carries its offset as the last argument; a reconnect with auth.offset replays the gap', async () => {
      const seen: unknown[][] = [];
      let offset: string | undefined;
      const s: Socket = await connectSocketIo(n.url, l, { transports: ['websocket'], auth: (cb: (a: object) => void) => cb(offset ? { offset } : {}) });
      open.push(s);
      s.on('h', (...args: unknown[]) => {
        seen.push(args);
        offset = args.at(-1) as string;
      });
      const p1 = await publish(n.url, 1);
      await waitFor('the first event', () => seen.length === 1);
      assert.deepEqual(seen[0], [1, p1.json.id]);
      s.disconnect();
      await waitFor('the socket to leave the hub', () => !n.node.hub.has('3@1'));
      const p2 = await publish(n.url, 2);
      const p3 = await publish(n.url, 3);
      s.connect();
      await waitFor('the replay', () => seen.length === 3);
      assert.deepEqual(seen.slice(1), [[2, p2.json.id], [3, p3.json.id]]);
      const notRec: unknown[][] = [];
      s.on('tidings:not-recovered', (...a: unknown[]) => notRec.push(a));
      s.disconnect();
      offset = 'eother-1';
      s.connect();
      await waitFor('not recovered', () => notRec.length === 1);
      assert.deepEqual(notRec[0], [{ reason: 'epoch' }, p3.json.id]);
      s.close();
    });

    it('a garbage auth.offset is a connect_error with TIDINGS_BAD_OFFSET', async () => {
      await assert.rejects(connectSocketIo(n.url, l, { transports: ['websocket'], auth: { offset: 'bogus' } }), (e: any) => e.data?.code === 'TIDINGS_BAD_OFFSET');
      await assert.rejects(connectSocketIo(n.url, l, { transports: ['websocket'], auth: { offset: 42 } }), (e: any) => e.data?.code === 'TIDINGS_BAD_OFFSET');
    });
  });

  it('a held poll or SSE stream takes a connection slot while open and frees it when it ends', async () => {
    const b = await login(n.url, 'bob@example.com', 'bob-pw');
    const streams = [];
    for (let i = 0; i < 8; i++) streams.push(await openSse(n.url, b));
    open.push(...streams);
    const refused = await poll(n.url, b);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'TIDINGS_TOO_MANY_CONNECTIONS');
    streams[0].close();
    await waitFor('the slot to be free again', async () => (await poll(n.url, b, { since: 'eother-1' })).status === 200);
    for (const x of streams) x.close();
  });

  it('a logout answers a held poll and ends an SSE stream with session:invalid', async () => {
    const l2 = await login(n.url, 'alice@example.com', 'alice-pw');
    const held = poll(n.url, l2);
    const sse = await openSse(n.url, l2);
    open.push(sse);
    await waitFor('both to be open', () => [...n.node.hub.all()].filter((c) => c.sessionId === l2.session).length === 2);
    const out = await fetch(`${n.url}/api/logout?session=${l2.session}`, { method: 'POST', headers: { cookie: l2.cookie } });
    assert.equal(out.status, 200);
    const a = await held;
    assert.equal(a.status, 200);
    assert.deepEqual(a.events, [{ name: 'session:invalid', args: [], namespace: '/' }]);
    await sse.ended;
    assert.deepEqual(sse.messages.map((m) => m.data.name), ['session:invalid']);
    assert.equal((await poll(n.url, l2)).status, 401);
  });

  it('a resume while events are being published has no gap and no duplicate', async () => {
    const first = await publish(n.url, 'start');
    let stop = false;
    let k = 0;
    const publishing = (async () => {
      while (!stop) await publish(n.url, `b${k++}`);
    })();
    await waitFor('some events to be published', () => k >= 20);
    const c = await connectPlainWsSince(n.url, l, first.json.id);
    open.push(c.ws);
    await waitFor('more events, live', () => k >= 60);
    stop = true;
    await publishing;
    const last = await publish(n.url, 'end');
    await waitFor('the last event', () => c.frames.at(-1)?.id === last.json.id);
    const seqs = c.frames.map((f) => Number(String(f.id).split('-')[1]));
    const start = Number(first.json.id.split('-')[1]);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => start + 1 + i));
    assert.deepEqual(c.frames.map((f) => f.args[0]), [...Array.from({ length: k }, (_, i) => `b${i}`), 'end']);
    c.ws.close();
  });
});

/** A plain WebSocket resuming from `since`. */
function connectPlainWsSince(url: string, l: Login, since: string) {
  return connectPlainWs(url, l, { path: '/r', since });
}

describe('a node shutting down', () => {
  it('answers a held poll (304 with its ETag) and ends SSE streams, so the client goes on elsewhere', async () => {
    // A long grace: were held requests left to run to the drain's deadline, stop() would take a minute.
    const m = await startNode({ properties: { 'tidings.longpoll.holdSeconds': 30, 'tidings.shutdown.graceMs': 60_000 } });
    const l = await login(m.url, 'alice@example.com', 'alice-pw');
    const held = poll(m.url, l);
    const sse = await openSse(m.url, l);
    await waitFor('both to be open', () => [...m.node.hub.all()].length === 2);
    const t0 = Date.now();
    await m.stop();
    const a = await held;
    assert.equal(a.status, 304);
    assert.match(a.etag ?? '', OFFSET);
    await sse.ended;
    assert.ok(Date.now() - t0 < 30_000, `stop() took ${Date.now() - t0} ms`);
    // The stream's last words: when to reconnect, spread over tidings.shutdown.reconnectSpreadMs.
    const retries = [...sse.text().matchAll(/^retry: (\d+)$/gm)].map((m) => Number(m[1]));
    assert.equal(retries.length, 2, sse.text());
    assert.ok(retries[1] >= 0 && retries[1] <= 10_000, String(retries[1]));
  });
});

describe('a slow log read when a socket connects without an offset', () => {
  it('an event published right after the client sees the connection is delivered (the head is read before)', async () => {
    // Every read of the log takes 300 ms, as a slow store would; appends are as fast as ever.
    const backends = (id: string) => {
      const b = memoryBackends(id);
      const inner = b.eventLog;
      const slow: EventLog = {
        start: () => inner.start(),
        stop: () => inner.stop(),
        append: (u, e, l) => inner.append(u, e, l),
        read: (u, since, l) => new Promise((res) => setTimeout(res, 300)).then(() => inner.read(u, since, l)),
      };
      return { ...b, eventLog: slow };
    };
    const m = await startNode({ backends });
    try {
      const l = await login(m.url, 'alice@example.com', 'alice-pw');
      const ws = await connectPlainWs(m.url, l, { path: '/slow' });
      const p1 = await publish(m.url, 'right after the open');
      const sio = await connectSocketIo(m.url, l, { transports: ['websocket'] });
      const seen: unknown[][] = [];
      sio.on('h', (...a: unknown[]) => seen.push(a));
      const p2 = await publish(m.url, 'right after connect');
      await waitFor('both events on the plain WebSocket', () => ws.frames.length === 2);
      assert.deepEqual(ws.frames.map((f) => f.id), [p1.json.id, p2.json.id]);
      await waitFor('the second on Socket.IO', () => seen.length === 1);
      assert.deepEqual(seen[0], ['right after connect', p2.json.id]);
      ws.ws.close();
      sio.close();
    } finally {
      await m.stop();
    }
  });
});

/** tidings_history_replays_total by result, from the node's /metrics. */
async function replays(url: string): Promise<{ recovered: number; not_recovered: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const of = (result: string) => Number(new RegExp(`^tidings_history_replays_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { recovered: of('recovered'), not_recovered: of('not_recovered') };
}
