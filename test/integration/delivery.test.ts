import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { collect, connectPlainWs, connectSocketIo, login, push, startNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

describe('login → connect → push → receive', () => {
  let n: TestNode;
  const open: { close(): void }[] = [];
  before(async () => {
    n = await startNode();
  });
  after(async () => {
    for (const s of open) s.close();
    await n.stop();
  });

  for (const transports of [['websocket'], ['polling']] as const) {
    it(`Socket.IO over ${transports[0]} gets the event with its args`, async () => {
      const l = await login(n.url, 'alice@example.com', 'alice-pw');
      const s = await connectSocketIo(n.url, l, { transports: [...transports] });
      open.push(s);
      assert.equal(s.io.engine.transport.name, transports[0]);
      const got = collect(s, 'ox:mail:new');
      const r = await push(n.url, { context: 1, user: 3, event: 'ox:mail:new', data: { folder: 'INBOX', id: '7' } });
      assert.equal(r.status, 202);
      assert.match(r.json.id, /^e[0-9a-z]+-\d+$/);
      await waitFor('the event', () => got.length === 1);
      // The offset is the last argument (README, "Resume").
      assert.deepEqual(got[0], [{ folder: 'INBOX', id: '7' }, r.json.id]);
    });
  }

  it('Socket.IO with the default transports upgrades to websocket and receives', async () => {
    const l = await login(n.url, 'alice@example.com', 'alice-pw');
    const s = await connectSocketIo(n.url, l);
    open.push(s);
    await waitFor('the upgrade to websocket', () => s.io.engine.transport.name === 'websocket');
    const got = collect(s, 'hello');
    const r = await push(n.url, { context: 1, user: 3, event: 'hello', args: [1, 'two'] });
    await waitFor('the event', () => got.length === 1);
    assert.deepEqual(got[0], [1, 'two', r.json.id]);
  });

  it('a plain WebSocket gets one JSON text frame per event, with name, args, namespace and id', async () => {
    const l = await login(n.url, 'alice@example.com', 'alice-pw');
    const c = await connectPlainWs(n.url, l, { path: '/push' });
    open.push(c.ws);
    const r = await push(n.url, { context: 1, user: 3, event: 'ox:mail:new', data: { subject: 'Hi' } });
    await waitFor('a frame', () => c.frames.length === 1);
    assert.deepEqual(c.frames[0], { name: 'ox:mail:new', args: [{ subject: 'Hi' }], namespace: '/', id: r.json.id });
  });

  it('every event gets its own id', async () => {
    const l = await login(n.url, 'alice@example.com', 'alice-pw');
    const c = await connectPlainWs(n.url, l, { path: '/ids' });
    open.push(c.ws);
    for (let i = 0; i < 5; i++) await push(n.url, { context: 1, user: 3, event: 'e', data: i, pathFilter: '/websockets/ids' });
    await waitFor('5 frames', () => c.frames.length === 5);
    assert.equal(new Set(c.frames.map((f) => f.id)).size, 5);
    assert.deepEqual(c.frames.map((f) => f.args[0]), [0, 1, 2, 3, 4]);
  });
});

describe('addressing: path filters, echo suppression, isolation, idempotency', () => {
  let n: TestNode;
  let sockets: Socket[] = [];
  let aliceWs: Awaited<ReturnType<typeof connectPlainWs>>[] = [];
  before(async () => {
    n = await startNode();
  });
  after(async () => {
    for (const s of sockets) s.close();
    for (const c of aliceWs) c.ws.close();
    await n.stop();
  });

  it('applies the §6 path-filter rules to socket paths', async () => {
    const l = await login(n.url, 'alice@example.com', 'alice-pw');
    const appsuite = await connectSocketIo(n.url, l, { subPath: '/appsuite', transports: ['websocket'] });
    const plain = await connectSocketIo(n.url, l, { transports: ['websocket'] });
    sockets.push(appsuite, plain);
    const push1 = await connectPlainWs(n.url, l, { path: '/push' });
    const push2 = await connectPlainWs(n.url, l, { path: '/push/deep/er' });
    const other = await connectPlainWs(n.url, l, { path: '/pushother' });
    aliceWs.push(push1, push2, other);
    const gotA = collect(appsuite, 'f');
    const gotP = collect(plain, 'f');
    const cases: [string | null, string[]][] = [
      [null, ['appsuite', 'plain', 'push1', 'push2', 'other']],
      ['*', ['appsuite', 'plain', 'push1', 'push2', 'other']],
      ['/socket.io/appsuite/*', ['appsuite']],
      ['/socket.io/appsuite', ['appsuite']],
      ['/websockets/push/*', ['push1', 'push2']],
      ['/websockets/push', ['push1']],
      ['/websockets/push/deep/er', ['push2']],
      ['/socket.io', ['plain']],
    ];
    for (const [i, [filter, expected]] of cases.entries()) {
      await push(n.url, { context: 1, user: 3, event: 'f', data: i, pathFilter: filter });
    }
    await waitFor('all deliveries', () => gotA.length === 4 && push1.frames.length === 4 && push2.frames.length === 4);
    // A final unfiltered marker proves nothing else is still on its way to any socket.
    await push(n.url, { context: 1, user: 3, event: 'f', data: 'end' });
    await waitFor('the marker everywhere', () => [gotA, gotP].every((g) => g.at(-1)?.[0] === 'end') && [push1, push2, other].every((c) => c.frames.at(-1)?.args[0] === 'end'));
    const seen = (name: string) => {
      const list = name === 'appsuite' ? gotA.map((a) => a[0]) : name === 'plain' ? gotP.map((a) => a[0]) : { push1, push2, other }[name]!.frames.map((f) => f.args[0]);
      return list.filter((x) => x !== 'end');
    };
    for (const name of ['appsuite', 'plain', 'push1', 'push2', 'other']) {
      const expected = cases.flatMap(([, who], i) => (who.includes(name) ? [i] : []));
      assert.deepEqual(seen(name), expected, `deliveries to ${name}`);
    }
  });

  it('refuses an invalid path filter with 400 TIDINGS_INVALID_PATH_FILTER and delivers nothing', async () => {
    for (const bad of ['', 'no-slash', '/trailing/', '/double//slash', '/bad char', '/x/*/y', '/ü']) {
      const r = await push(n.url, { context: 1, user: 3, event: 'f', data: 'bad', pathFilter: bad });
      assert.equal(r.status, 400, `filter ${JSON.stringify(bad)}`);
      assert.equal(r.json.error.code, 'TIDINGS_INVALID_PATH_FILTER');
    }
  });

  it('sourceToken suppresses the echo to the connection with that id only', async () => {
    const l = await login(n.url, 'alice@example.com', 'alice-pw');
    const a = await connectPlainWs(n.url, l, { path: '/echo', connection: 'conn-a' });
    const b = await connectPlainWs(n.url, l, { path: '/echo', connection: 'conn-b' });
    aliceWs.push(a, b);
    await push(n.url, { context: 1, user: 3, event: 'e', data: 1, sourceToken: 'conn-a', pathFilter: '/websockets/echo' });
    await push(n.url, { context: 1, user: 3, event: 'e', data: 2, pathFilter: '/websockets/echo' });
    await waitFor('both events at b', () => b.frames.length === 2);
    await waitFor('the second at a', () => a.frames.length >= 1);
    assert.deepEqual(a.frames.map((f) => f.args[0]), [2]);
  });

  it('a user never receives another user\'s event (same user id in another context, other user in the same context)', async () => {
    const alice = await login(n.url, 'alice@example.com', 'alice-pw');
    const bob = await login(n.url, 'bob@example.com', 'bob-pw');
    const carol = await login(n.url, 'carol@other.org', 'carol-pw'); // user 3 too, but in context 2
    const wa = await connectPlainWs(n.url, alice, { path: '/iso' });
    const wb = await connectPlainWs(n.url, bob, { path: '/iso' });
    const wc = await connectPlainWs(n.url, carol, { path: '/iso' });
    aliceWs.push(wa, wb, wc);
    await push(n.url, { context: 2, user: 3, event: 'for-carol', data: 'c' });
    await push(n.url, { context: 1, user: 4, event: 'for-bob', data: 'b' });
    await push(n.url, { context: 1, user: 3, event: 'for-alice', data: 'a' });
    await waitFor('each own event', () => wa.frames.length >= 1 && wb.frames.length >= 1 && wc.frames.length >= 1);
    assert.deepEqual(wa.frames.map((f) => f.name), ['for-alice']);
    assert.deepEqual(wb.frames.map((f) => f.name), ['for-bob']);
    assert.deepEqual(wc.frames.map((f) => f.name), ['for-carol']);
  });

  it('a repeated idempotency key is acknowledged and dropped', async () => {
    const l = await login(n.url, 'bob@example.com', 'bob-pw');
    const c = await connectPlainWs(n.url, l, { path: '/idem' });
    aliceWs.push(c);
    const first = await push(n.url, { context: 1, user: 4, event: 'k', data: 1, key: 'k-1' });
    const again = await push(n.url, { context: 1, user: 4, event: 'k', data: 1, key: 'k-1' });
    await push(n.url, { context: 1, user: 4, event: 'k', data: 'marker' });
    assert.equal(first.status, 202);
    assert.equal(first.json.duplicate, false);
    assert.equal(again.status, 202);
    assert.equal(again.json.duplicate, true);
    await waitFor('the marker', () => c.frames.some((f) => f.args[0] === 'marker'));
    assert.deepEqual(c.frames.map((f) => f.args[0]), [1, 'marker']);
  });
});
