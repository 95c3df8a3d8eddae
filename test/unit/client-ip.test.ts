import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeIp, proxyEntryProblem, TrustedProxies } from '../../src/http/client-ip.js';

describe('client IP behind trusted proxies', () => {
  it('trusts no one by default: the peer is the client, whatever X-Forwarded-For says', () => {
    assert.equal(new TrustedProxies([]).resolve('192.0.2.10', ['203.0.113.9']), '192.0.2.10');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    assert.equal(new TrustedProxies(['10.0.0.0/8']).resolve('192.0.2.10', ['203.0.113.9']), '192.0.2.10');
  });

  it('takes the rightmost address that is not a trusted proxy, not the leftmost a client may forge', () => {
    const t = new TrustedProxies(['10.0.0.1', '10.1.0.0/16']);
    // client forged "198.51.100.1", its real address 203.0.113.5 was appended by the edge proxy 10.1.2.3
    assert.equal(t.resolve('10.0.0.1', ['198.51.100.1', '203.0.113.5', '10.1.2.3']), '203.0.113.5');
    assert.equal(t.resolve('10.0.0.1', ['203.0.113.5']), '203.0.113.5');
  });

  it('stops at a garbled entry, and when every hop is trusted keeps the leftmost', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    assert.equal(t.resolve('10.0.0.1', ['203.0.113.5', 'unknown', '10.0.0.2']), '10.0.0.2');
    assert.equal(t.resolve('10.0.0.1', ['10.0.0.3', '10.0.0.2']), '10.0.0.3');
  });

  it('handles IPv6 CIDRs, IPv4-mapped peers and addresses with ports', () => {
    const t = new TrustedProxies(['2001:db8::/32', '127.0.0.1']);
    assert.equal(t.resolve('2001:db8::7', ['2001:DB9::1', '[2001:db8:ffff::1]:4711']), '2001:db9::1');
    assert.equal(t.resolve('2001:db8::7', ['198.51.100.4:5000']), '198.51.100.4');
    assert.equal(t.resolve('::ffff:127.0.0.1', ['198.51.100.4']), '198.51.100.4');
    assert.equal(normalizeIp('::FFFF:192.0.2.1'), '192.0.2.1');
  });

  it('names what is wrong with a bad entry', () => {
    assert.equal(proxyEntryProblem('10.0.0.0/8'), null);
    assert.equal(proxyEntryProblem('::1'), null);
    assert.match(proxyEntryProblem('nginx') ?? '', /not an IPv4\/IPv6 address or CIDR/);
    assert.match(proxyEntryProblem('10.0.0.0/33') ?? '', /prefix length outside 0-32/);
    assert.match(proxyEntryProblem('::/129') ?? '', /prefix length outside 0-128/);
    assert.match(proxyEntryProblem('10.0.0.0/x') ?? '', /prefix length/);
  });
});
