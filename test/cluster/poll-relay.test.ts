import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { newSid as engineSid, ownerOfSid } from '../../src/sockets/engine-sid.js';
import { RELAY_HEADER } from '../../src/cluster/relay-auth.js';
import { httpFrom, type HttpAnswer } from '../helpers/http-from.js';
import { push, type Login } from '../helpers/node.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { members, startCluster, type Cluster } from './fixture.js';

/**
 * Engine.IO polling spread over three nodes by hand, request by request, as a round-robin balancer
 * would: the handshake on one node, every further request on another. Raw HTTP, so every answer
 * (and every refusal's JSON) is seen as it is.
 */
describe('polling requests relayed to the node that owns the Engine.IO session', () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  const VICTIM = '127.0.0.2';

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, { 'tidings.session.ipCheck': true, 'com.openexchange.websockets.grizzly.remote.delayDuration': 0 }, 'pr');
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  async function loginFrom(url: string, localAddress: string): Promise<Login> {
    const r = await httpFrom(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'erin@example.com', password: 'erin-pw' }), localAddress });
    assert.equal(r.status, 200, r.text);
    return { session: r.json.session, cookie: String(([] as string[]).concat(r.headers['set-cookie'] ?? [])[0]).split(';')[0], user: r.json.user, context: r.json.context };
  }

  function poll(url: string, l: Login, o: { sid?: string; body?: string; localAddress?: string; cookie?: string | null; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
    const q = new URLSearchParams({ EIO: '4', transport: 'polling', session: l.session, ...(o.sid ? { sid: o.sid } : {}) });
    const headers: Record<string, string> = { ...o.headers };
    const cookie = o.cookie === undefined ? l.cookie : o.cookie;
    if (cookie) headers.cookie = cookie;
    if (o.body !== undefined) headers['content-type'] = 'text/plain;charset=UTF-8';
    return httpFrom(`${url}/socket.io/?${q}`, { method: o.body === undefined ? 'GET' : 'POST', headers, body: o.body, localAddress: o.localAddress ?? VICTIM });
  }

  async function handshake(url: string, l: Login): Promise<string> {
    const r = await poll(url, l);
    assert.equal(r.status, 200, r.text);
    return JSON.parse(r.text.slice(1)).sid as string;
  }

  it('the sid names the node that made it, and each node advertises where it can be reached', async () => {
    const [u1] = cluster!.urls;
    const l = await loginFrom(u1, VICTIM);
    assert.equal(ownerOfSid(await handshake(u1, l)), cluster!.ids[0]);
    const expected = JSON.stringify(Object.fromEntries(cluster!.ids.map((id, i) => [id, cluster!.urls[i]])));
    // The URL goes out with each node's first heartbeat after it listens.
    await waitFor('every member\'s advertised URL', async () => {
      const r = await httpFrom(`${u1}/api/admin/status`, { headers: { authorization: 'Bearer test-admin-token' } });
      const urls = Object.fromEntries((r.json.members as { nodeId: string; advertiseUrl: string }[]).map((m) => [m.nodeId, m.advertiseUrl]));
      return JSON.stringify(urls) === expected;
    }, 5000, 100);
  });

  it('a session made on node 1 is served on nodes 2 and 3: connect, then an event, no "Session ID unknown"', async () => {
    const [u1, u2, u3] = cluster!.urls;
    const l = await loginFrom(u2, VICTIM);
    const sid = await handshake(u1, l);
    const connect = await poll(u2, l, { sid, body: '40' });
    assert.deepEqual([connect.status, connect.text], [200, 'ok']);
    const ack = await poll(u3, l, { sid });
    assert.equal(ack.status, 200, ack.text);
    assert.match(ack.text, /^40\{"sid":/);
    const p = await push(u3, { context: 1, user: 6, event: 'relayed', data: 'once' });
    assert.equal(p.status, 202);
    const got = await waitFor('the event on a relayed poll', async () => {
      const r = await poll(u2, l, { sid });
      assert.equal(r.status, 200, r.text);
      return r.text.includes('42["relayed"') ? r.text : null;
    }, 10_000, 0);
    assert.equal(got.split('42["relayed"').length - 1, 1);
  });

  it('tidings_relayed_polls_total counts each polling request a node relays, on that node only', async () => {
    const [u1, u2] = cluster!.urls;
    const relayedOn = async (url: string) => {
      const r = await httpFrom(`${url}/metrics`);
      assert.equal(r.status, 200);
      return Number(/^tidings_relayed_polls_total (\d+)$/m.exec(r.text)?.[1] ?? NaN);
    };
    const l = await loginFrom(u1, VICTIM);
    const sid = await handshake(u1, l);
    const [before1, before2] = [await relayedOn(u1), await relayedOn(u2)];
    assert.equal((await poll(u2, l, { sid, body: '40' })).text, 'ok');
    assert.match((await poll(u2, l, { sid })).text, /^40/);
    // Served by its owner directly: not a relay.
    assert.equal((await poll(u1, l, { sid, body: '3' })).status, 200);
    assert.equal(await relayedOn(u2), before2 + 2);
    assert.equal(await relayedOn(u1), before1);
  });

  it('the WebSocket upgrade of a session made on node 1, sent to node 2, is tunnelled to node 1 and carries events', async () => {
    const [u1, u2] = cluster!.urls;
    const l = await loginFrom(u1, VICTIM);
    const sid = await handshake(u1, l);
    assert.equal((await poll(u2, l, { sid, body: '40' })).text, 'ok');
    assert.match((await poll(u1, l, { sid })).text, /^40/);
    const q = new URLSearchParams({ EIO: '4', transport: 'websocket', sid, session: l.session });
    const ws = new WebSocket(`${u2.replace(/^http/, 'ws')}/socket.io/?${q}`, { headers: { cookie: l.cookie }, localAddress: VICTIM });
    const frames: string[] = [];
    ws.on('message', (d) => frames.push(String(d)));
    try {
      await new Promise<void>((res, rej) => {
        ws.once('open', () => res());
        ws.once('error', rej);
      });
      // Engine.IO's upgrade handshake, as the client does it
      ws.send('2probe');
      await waitFor('3probe through the tunnel', () => frames.includes('3probe'), 5000);
      ws.send('5');
      const p = await push(u2, { context: 1, user: 6, event: 'tunnelled', data: 1 });
      assert.equal(p.status, 202);
      await waitFor('the event over the tunnelled WebSocket', () => frames.some((f) => f.startsWith('42["tunnelled"')), 5000);
    } finally {
      ws.close();
    }
  });

  it('the relaying node runs the gate first: no cookie, or another client IP under ipCheck, is refused there', async () => {
    const [u1, u2] = cluster!.urls;
    const l = await loginFrom(u1, VICTIM);
    const sid = await handshake(u1, l);
    const noCookie = await poll(u2, l, { sid, cookie: null });
    assert.deepEqual([noCookie.status, noCookie.json?.error?.code], [403, 'TIDINGS_SECRET_MISSING']);
    const otherIp = await poll(u2, l, { sid, localAddress: '127.0.0.3' });
    assert.deepEqual([otherIp.status, otherIp.json?.error?.code], [403, 'TIDINGS_IP_MISMATCH']);
  });

  it('a request that claims to be relayed without a valid signature is refused by the owner', async () => {
    const [u1] = cluster!.urls;
    const l = await loginFrom(u1, VICTIM);
    const sid = await handshake(u1, l);
    const claimed = `${Buffer.from('pr2').toString('base64url')}.${Date.now()}.${Buffer.from(VICTIM).toString('base64url')}.1.AAAA`;
    const r = await poll(u1, l, { sid, localAddress: '127.0.0.3', headers: { [RELAY_HEADER]: claimed } });
    assert.deepEqual([r.status, r.json?.error?.code, r.json?.error?.message], [403, 'TIDINGS_RELAY_FORBIDDEN', 'Refused a relayed request: wrong relay signature']);
    // and the owner's log says so, with the peer that tried
    await waitFor('the warning in node 1\'s log', () => cluster!.nodes[0].lines.some((x) => x.msg === 'refused a relayed request without a valid signature' && x.peer === '127.0.0.3' && x.why === 'wrong relay signature'), 5000);
  });

  it('a sid of a node that is not in the cluster is a clear 400 TIDINGS_SID_UNKNOWN, not a hang', async () => {
    const [, u2] = cluster!.urls;
    assert.ok(!(await members(u2)).includes('ghost'));
    const l = await loginFrom(u2, VICTIM);
    const r = await poll(u2, l, { sid: engineSid('ghost') });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'TIDINGS_SID_UNKNOWN');
    assert.match(r.json.error.message, /node 'ghost', which is not in the cluster/);
  });
});
