import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalHub } from '../../src/delivery/local-hub.js';
import { CLOSE, type LocalConnection } from '../../src/delivery/local-connection.js';
import type { UserKey } from '../../src/domain/types.js';

function conn(id: string, user: string, sessionId: string, log: string[]): LocalConnection {
  return { id, user: user as UserKey, sessionId, sessionExpiresAt: 0, path: '/', transport: 'websocket', send: () => log.push(`send ${id}`), hold: () => undefined, release: () => undefined, close: () => log.push(`close ${id}`) };
}

describe('LocalHub', () => {
  it('closeSession closes exactly that session\'s connections, across users\' maps, and forgets removed ones', () => {
    const log: string[] = [];
    const events: string[] = [];
    const hub = new LocalHub({ added: (c) => events.push(`+${c.id}`), removed: (c) => events.push(`-${c.id}`), sendFailed: () => undefined });
    const a1 = conn('a1', '3@1', 's1', log);
    const a2 = conn('a2', '3@1', 's1', log);
    const a3 = conn('a3', '3@1', 's2', log);
    const b1 = conn('b1', '4@1', 's3', log);
    for (const c of [a1, a2, a3, b1]) hub.add(c);
    assert.equal(hub.remove(a2), true);
    assert.equal(hub.closeSession('s1', CLOSE.sessionEnded), 1);
    assert.deepEqual(log, ['close a1']);
    // A connection replaced under the same id leaves the old one's session behind.
    const a3again = conn('a3', '3@1', 's4', log);
    hub.add(a3again);
    assert.equal(hub.closeSession('s2', CLOSE.sessionEnded), 0);
    assert.equal(hub.closeSession('s4', CLOSE.sessionEnded), 1);
    assert.equal(hub.closeSession('nope', CLOSE.sessionEnded), 0);
    assert.deepEqual(events, ['+a1', '+a2', '+a3', '+b1', '-a2', '-a3', '+a3']);
    assert.equal(hub.size, 3);
  });

  it('a connection whose send throws costs no other connection of the user, and is reported', () => {
    const log: string[] = [];
    const failed: string[] = [];
    const hub = new LocalHub({ added: () => undefined, removed: () => undefined, sendFailed: (c, err) => failed.push(`${c.id}: ${String(err)}`) });
    const broken: LocalConnection = { ...conn('a1', '3@1', 's1', log), send: () => { throw new Error('boom'); } };
    hub.add(broken);
    hub.add(conn('a2', '3@1', 's1', log));
    const event = { id: 'e1', name: 'x', args: [], namespace: '/' };
    assert.equal(hub.deliver('3@1' as UserKey, event, '{}', null, null), 1);
    assert.deepEqual(log, ['send a2']);
    assert.deepEqual(failed, ['a1: Error: boom']);
  });
});
