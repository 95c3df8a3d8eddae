import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SessionExpiryWatch } from '../../src/auth/session-expiry-watch.js';
import type { Session } from '../../src/ports/session-store.js';

// Timers are faked; time is an injected clock moved together with them.
let clock = 0;
let store: Map<string, number>;
let failing = false;
let reads: string[];
let closed: { id: string; at: number }[];
let watch: SessionExpiryWatch;

const session = (id: string, expiresAt: number): Session => ({ id, secret: 'x', userId: 3, contextId: 1, login: 'a', clientIp: '', createdAt: 0, expiresAt });

beforeEach(() => {
  clock = 1_000_000;
  store = new Map();
  failing = false;
  reads = [];
  closed = [];
  mock.timers.enable({ apis: ['setInterval'] });
  watch = new SessionExpiryWatch({
    get: async (id) => {
      reads.push(id);
      if (failing) throw new Error('store down');
      const exp = store.get(id);
      return exp === undefined || exp <= clock ? null : session(id, exp);
    },
    close: (id) => closed.push({ id, at: clock }),
    now: () => clock,
    sweepMs: 60_000,
  });
});

afterEach(() => {
  watch.stop();
  mock.timers.reset();
});

/** Moves time on by `ms` in 50 ms steps, letting the store's promises settle at each step. */
async function advance(ms: number): Promise<void> {
  for (let done = 0; done < ms; done += 50) {
    clock += 50;
    mock.timers.tick(50);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}

describe('session expiry watch', () => {
  it('closes a session\'s sockets within 250 ms of its expiry, not before, without reading it earlier', async () => {
    store.set('s1', clock + 10_000);
    watch.track('s1', clock + 10_000);
    const expiry = clock + 10_000;
    await advance(9_950);
    assert.equal(closed.length, 0);
    assert.deepEqual(reads, [], 'no store read before the session is due');
    await advance(300);
    assert.equal(closed.length, 1);
    assert.equal(closed[0].id, 's1');
    assert.ok(closed[0].at >= expiry && closed[0].at <= expiry + 250, `closed at +${closed[0].at - expiry} ms`);
    assert.equal(watch.size, 0);
  });

  it('a session slid by another node is re-read at its old expiry and closed at its new one', async () => {
    store.set('s1', clock + 1_000);
    watch.track('s1', clock + 1_000);
    store.set('s1', clock + 3_000);
    const newExpiry = clock + 3_000;
    await advance(1_300);
    assert.equal(closed.length, 0);
    assert.deepEqual(reads, ['s1']);
    await advance(2_000);
    assert.equal(closed.length, 1);
    assert.ok(closed[0].at >= newExpiry && closed[0].at <= newExpiry + 250);
  });

  it('keeps watching while one of several sockets of the session is open, and stops when the last one goes', async () => {
    store.set('s1', clock + 1_000);
    watch.track('s1', clock + 1_000);
    watch.track('s1', clock + 1_000);
    watch.untrack('s1');
    assert.equal(watch.size, 1);
    watch.untrack('s1');
    assert.equal(watch.size, 0);
    await advance(2_000);
    assert.deepEqual(reads, []);
    assert.equal(closed.length, 0);
  });

  it('the sweep closes a session that vanished from the store before its expiry', async () => {
    store.set('s1', clock + 3_600_000);
    store.set('s2', clock + 3_600_000);
    watch.track('s1', clock + 3_600_000);
    watch.track('s2', clock + 3_600_000);
    store.delete('s1');
    await advance(59_950);
    assert.equal(closed.length, 0);
    await advance(100);
    assert.deepEqual(closed.map((c) => c.id), ['s1']);
    assert.deepEqual(reads.sort(), ['s1', 's2']);
    assert.equal(watch.size, 1);
  });

  it('closes nothing while the store cannot answer, and closes once it answers that the session is gone', async () => {
    store.set('s1', clock + 500);
    watch.track('s1', clock + 500);
    failing = true;
    await advance(2_500);
    assert.equal(closed.length, 0);
    assert.ok(reads.length >= 2, 'retried');
    assert.ok(reads.length <= 4, `retried ${reads.length} times in 2 s; expected about once a second`);
    failing = false;
    await advance(1_300);
    assert.deepEqual(closed.map((c) => c.id), ['s1']);
  });

  it('a connection admitted for a session that already expired is closed at the next tick', async () => {
    watch.track('s1', clock - 1);
    await advance(300);
    assert.deepEqual(closed.map((c) => c.id), ['s1']);
  });
});
