import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { decodeBusMessage, encodeBusMessage } from '../../src/adapters/bus-codec.js';
import { busDispatch } from '../../src/app/bus-dispatch.js';
import { LocalHub } from '../../src/delivery/local-hub.js';
import { DedupeWindow } from '../../src/delivery/dedupe-window.js';
import { Publisher } from '../../src/delivery/publisher.js';
import type { LocalConnection } from '../../src/delivery/local-connection.js';
import { MemoryPublishLookup } from '../../src/adapters/memory/memory-publish-lookup.js';
import { Metrics } from '../../src/metrics.js';
import type { BusMessage } from '../../src/ports/cluster-bus.js';
import type { PushEvent, UserKey } from '../../src/domain/types.js';

describe('bus codec', () => {
  it('round-trips every message type', () => {
    const all: BusMessage[] = [
      { type: 'deliver', from: 'a', batch: [{ user: '3@1', pathFilter: null, sourceTokens: [null, 't'], payloads: ['{"id":"1"}', '{"id":"2"}'] }] },
      { type: 'session-ended', from: 'a', sessionId: 's' },
      { type: 'config-changed', from: 'a', reason: 'r' },
      { type: 'reload', from: 'a' },
    ];
    for (const m of all) assert.deepEqual(decodeBusMessage(encodeBusMessage(m)), { ok: true, message: m });
  });

  it('refuses what is not JSON, malformed fields, and names an unknown type', () => {
    assert.deepEqual(decodeBusMessage('nope'), { ok: false, why: 'not JSON' });
    for (const bad of ['[1,2]', 'null', '{"type":"reload"}', '{"type":"deliver","from":"x","batch":5}', '{"type":"session-ended","from":"x"}',
      '{"type":"deliver","from":"x","batch":[{"user":"3@1","pathFilter":null,"sourceTokens":[],"payloads":["a"]}]}',
      '{"type":"deliver","from":"x","batch":[{"user":"3@1","pathFilter":null,"sourceTokens":[5],"payloads":["a"]}]}']) {
      assert.deepEqual(decodeBusMessage(bad), { ok: false, why: 'malformed' }, bad);
    }
    assert.deepEqual(decodeBusMessage('{"type":"history-trim","from":"x"}'), { ok: false, why: 'unknown type', type: 'history-trim' });
  });
});

describe('bus dispatch', () => {
  it('routes each type, ignoring this node\'s own config-changed and reload but not its own session-ended', () => {
    const calls: string[] = [];
    const dispatch = busDispatch({
      nodeId: 'me',
      deliver: (b) => calls.push(`deliver ${b.length}`),
      endSession: (s) => calls.push(`end ${s}`),
      refreshConfig: () => calls.push('refresh'),
      reload: () => calls.push('reload'),
    });
    for (const from of ['me', 'other']) {
      dispatch({ type: 'deliver', from, batch: [] });
      dispatch({ type: 'session-ended', from, sessionId: from });
      dispatch({ type: 'config-changed', from, reason: 'x' });
      dispatch({ type: 'reload', from });
    }
    assert.deepEqual(calls, ['deliver 0', 'end me', 'deliver 0', 'end other', 'refresh', 'reload']);
  });
});

describe('Publisher.receive', () => {
  function setUp() {
    const got: string[] = [];
    const hub = new LocalHub();
    const conn = (id: string, user: string): LocalConnection => ({
      id, user: user as UserKey, sessionId: `s-${id}`, sessionExpiresAt: 0, path: '/p', transport: 'websocket',
      // Like Socket.IO with a reserved event name: this connection's transport throws on it.
      send: (e: PushEvent) => {
        if (e.name === 'disconnect') throw new Error('"disconnect" is a reserved event name');
        got.push(`${id} ${e.name}`);
      },
      hold: () => undefined,
      release: () => undefined,
      close: () => undefined,
    });
    hub.add(conn('a', '3@1'));
    hub.add(conn('b', '4@1'));
    const publisher = new Publisher({
      nodeId: 'n', hub, lookup: new MemoryPublishLookup(), historyLimits: () => ({ size: 100, ttlMs: 600_000 }), backendUp: () => true, fallbackDedupe: new DedupeWindow(), remote: { offer: () => undefined },
      dedupeTtlMs: () => 1000, metrics: new Metrics(), log: pino({ level: 'silent' }),
    });
    return { got, publisher };
  }
  const ev = (id: string, name: string) => JSON.stringify({ name, args: [], namespace: '/', id });

  it('one payload that cannot be delivered costs neither the other payloads nor the other users of the batch', () => {
    const { got, publisher } = setUp();
    publisher.receive([
      { user: '3@1', pathFilter: null, sourceTokens: [null, null, null, null], payloads: [ev('1', 'first'), ev('2', 'disconnect'), 'not json', ev('3', 'third')] },
      { user: '4@1', pathFilter: null, sourceTokens: [null], payloads: [ev('4', 'other-user')] },
    ]);
    assert.deepEqual(got, ['a first', 'a third', 'b other-user']);
  });
});
