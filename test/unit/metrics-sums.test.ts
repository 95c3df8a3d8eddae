import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/metrics.js';

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Metrics: per-event counts kept as plain sums', () => {
  it('every count reaches /metrics once, however often it is read', async () => {
    const m = new Metrics();
    m.countDelivered('remote', 2);
    m.countDelivered('remote', 3);
    m.countDelivered('local', 1);
    m.countPublished('api');
    m.countPublished('dovecot');
    m.countPublished('api');
    let text = await m.registry.metrics();
    assert.equal(value(text, 'tidings_deliveries_total{origin="remote"}'), 5);
    assert.equal(value(text, 'tidings_deliveries_total{origin="local"}'), 1);
    assert.equal(value(text, 'tidings_events_published_total{source="api"}'), 2);
    assert.equal(value(text, 'tidings_events_published_total{source="dovecot"}'), 1);
    text = await m.registry.metrics();
    assert.equal(value(text, 'tidings_deliveries_total{origin="remote"}'), 5, 'a second read counts nothing twice');
    m.countDelivered('remote', 4);
    text = await m.registry.metrics();
    assert.equal(value(text, 'tidings_deliveries_total{origin="remote"}'), 9);
    assert.equal(value(text, 'tidings_events_published_total{source="api"}'), 2);
  });
});
