import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newSid as engineSid, ownerOfSid } from '../../src/sockets/engine-sid.js';
import { RelayAuth } from '../../src/cluster/relay-auth.js';

describe('Engine.IO sids that name their owner', () => {
  it('round-trips any node id and stays URL-safe and unique', () => {
    for (const id of ['n1', 'node-8f3a', 'tidings1', 'ü.node/with:odd chars']) {
      const sid = engineSid(id);
      assert.match(sid, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{20}$/);
      assert.equal(ownerOfSid(sid), id);
    }
    assert.notEqual(engineSid('n1'), engineSid('n1'));
  });

  it('names no owner for the sids of another scheme (engine.io\'s own base64 ids) or garbage', () => {
    for (const sid of ['AAAAAAAAAAAAAAAAAAAA', 'a.b.c', '.x', '', 'ab$.cd']) assert.equal(ownerOfSid(sid), null, sid);
  });
});

describe('relay signatures', () => {
  const claim = { from: 'n2', clientIp: '198.51.100.7', peerTrusted: true };
  const url = '/socket.io/?EIO=4&transport=polling&sid=x&session=s';

  it('a signed claim verifies for the same method and URL, with the same key', () => {
    const h = new RelayAuth('k', '').sign(claim, 'GET', url);
    assert.deepEqual(new RelayAuth('k', '').verify(h, 'GET', url), { ok: true, claim });
  });

  it('refuses another key, method or URL, a changed claim, an old signature, and garbage', () => {
    const a = new RelayAuth('k', '');
    const h = a.sign(claim, 'GET', url, 1_000_000);
    const now = 1_000_000;
    assert.deepEqual(new RelayAuth('other', '').verify(h, 'GET', url, now), { ok: false, why: 'wrong relay signature' });
    assert.deepEqual(a.verify(h, 'POST', url, now), { ok: false, why: 'wrong relay signature' });
    assert.deepEqual(a.verify(h, 'GET', url + '&x=1', now), { ok: false, why: 'wrong relay signature' });
    const parts = h.split('.');
    parts[2] = Buffer.from('203.0.113.1').toString('base64url');
    assert.deepEqual(a.verify(parts.join('.'), 'GET', url, now), { ok: false, why: 'wrong relay signature' });
    assert.deepEqual(a.verify(h, 'GET', url, now + 31_000), { ok: false, why: 'relay signature too old' });
    assert.deepEqual(a.verify('x.y', 'GET', url, now), { ok: false, why: 'malformed relay header' });
  });

  it('derives the key from the admin token when no cluster secret is set, and relays nothing with neither', () => {
    const h = new RelayAuth('', 'admin').sign(claim, 'GET', url);
    assert.equal(new RelayAuth('', 'admin').verify(h, 'GET', url).ok, true);
    assert.equal(new RelayAuth('admin', '').verify(h, 'GET', url).ok, false, 'the derived key is not the secret itself');
    const none = new RelayAuth('', '');
    assert.equal(none.enabled, false);
    assert.equal(none.verify(h, 'GET', url).ok, false);
  });
});
