import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Readiness } from '../../src/app/readiness.js';

describe('Readiness', () => {
  it('follows the round trip, turns false at once while the registry re-registers, and stays false once stopped', async () => {
    let roundTrip = true;
    let registered = true;
    const r = new Readiness({ check: async () => roundTrip, registered: () => registered, log: pino({ level: 'silent' }) });
    assert.deepEqual(r.state(), { ready: false, reason: 'starting' });
    await r.start();
    assert.deepEqual(r.state(), { ready: true, reason: undefined });
    registered = false;
    assert.deepEqual(r.state(), { ready: false, reason: 're-registering this node\'s connections' });
    registered = true;
    assert.equal(r.state().ready, true);
    roundTrip = false;
    r.stop('shutting down');
    assert.deepEqual(r.state(), { ready: false, reason: 'shutting down' });
  });

  it('a check that throws counts as a failed round trip', async () => {
    const r = new Readiness({ check: async () => { throw new Error('down'); }, registered: () => true, log: pino({ level: 'silent' }) });
    await r.start();
    assert.deepEqual(r.state(), { ready: false, reason: 'no round trip through the cluster backend' });
    r.stop('shutting down');
  });
});
