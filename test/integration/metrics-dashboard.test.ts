/**
 * Issue 14 item 5: the metrics an operator alarms on exist and move on two real nodes sharing a real
 * Redis, and every query of docs/grafana-dashboard.json names a metric the node exports.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connectPlainWs, login, push, startNode, type TestNode } from '../helpers/node.js';
import { ROOT } from '../helpers/readme.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import type { UserKey } from '../../src/domain/types.js';

/** `name{labels} value` samples and the `# TYPE` names of an exposition text. */
function parse(text: string): { types: Map<string, string>; value(name: string): number } {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1], t[2]);
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (s) samples.set(s[1], (samples.get(s[1]) ?? 0) + Number(s[3]));
  }
  return { types, value: (name) => samples.get(name) ?? NaN };
}

const metricsOf = async (n: TestNode) => parse(await (await fetch(`${n.url}/metrics`)).text());

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or label names. */
function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  // A word followed by `(` is a function; ranges like [5m] and numbers like 1e9 are no words here.
  return [...withoutLabels.replace(/\[[^\]]*\]/g, '').matchAll(/\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()/g)].map((m) => m[0]);
}

describe('operator metrics', () => {
  let redis: RedisServer;
  let a: TestNode;
  let b: TestNode;
  before(async () => {
    redis = await startRedis();
    // A 3 s hold, so that the depth can be read while the events wait.
    a = await startNode({ properties: { 'tidings.redis.url': redis.url, 'tidings.node.id': 'metrics-a', 'com.openexchange.websockets.grizzly.remote.delayDuration': 3000, 'com.openexchange.websockets.grizzly.remote.maxDelayDuration': 5000 } });
    b = await startNode({ properties: { 'tidings.redis.url': redis.url, 'tidings.node.id': 'metrics-b' } });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it('remote-buffer depth, coalesced events and flush latency, the Redis round trip and the bus lag move', async () => {
    const l = await login(b.url, 'alice@example.com', 'alice-pw');
    const ws = await connectPlainWs(b.url, l, {});
    try {
      // Asked of the registry, not the publish lookup: a lookup appends to alice's history, and the socket would get those entries too.
      await waitFor('node a to see alice on node b', async () => (await a.node.backends.registry.countFor('3@1' as UserKey)) === 1);
      // Two events within delayDuration: one batch, the second coalesced into the first.
      for (const subject of ['one', 'two']) assert.equal((await push(a.url, { context: 1, user: 3, event: 'ox:mail:new', data: { subject } })).status, 202);
      assert.equal((await metricsOf(a)).value('tidings_remote_buffer_pending'), 2);
      await waitFor('both events on node b', () => ws.frames.length === 2);
      await waitFor('the flush to be observed', async () => (await metricsOf(a)).value('tidings_remote_flush_seconds_count') === 1);
      const m = await metricsOf(a);
      assert.equal(m.value('tidings_remote_coalesced_total'), 1);
      assert.equal(m.value('tidings_remote_buffer_pending'), 0);
      // Held about delayDuration from the first event.
      assert.ok(m.value('tidings_remote_flush_seconds_sum') >= 2.9, String(m.value('tidings_remote_flush_seconds_sum')));
      assert.ok(m.value('tidings_redis_roundtrip_seconds_count') >= 1);
      assert.ok(m.value('tidings_bus_lag_seconds_count') >= 1, 'the readiness ping at start is observed');
      assert.equal((await metricsOf(b)).value('tidings_remote_batches_received_total'), 1);
    } finally {
      ws.ws.close();
    }
  });

  it('the metrics other parts report are declared, so alerts on them can be written now', async () => {
    const m = await metricsOf(a);
    for (const name of ['tidings_history_replays_total', 'tidings_slow_consumer_disconnects_total', 'tidings_relayed_polls_total', 'tidings_login_failures_total', 'tidings_login_limited_total', 'tidings_remote_buffer_dropped_total']) {
      assert.equal(m.types.get(name.replace(/_total$/, '')) ?? m.types.get(name), 'counter', name);
    }
  });

  it('every query of docs/grafana-dashboard.json names a metric this node exports', async () => {
    const dash = JSON.parse(readFileSync(`${ROOT}docs/grafana-dashboard.json`, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const m = await metricsOf(a);
    const exported = (name: string) => {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      if (base !== name && m.types.get(base) === 'histogram') return true;
      return m.types.has(name) || m.types.has(name.replace(/_total$/, ''));
    };
    let queries = 0;
    for (const p of dash.panels) {
      assert.ok(p.targets.length > 0, p.title);
      for (const t of p.targets) {
        const names = metricNames(t.expr);
        assert.ok(names.length > 0, `no metric in ${t.expr}`);
        for (const n of names) assert.ok(exported(n), `panel "${p.title}": ${n} is not exported (${t.expr})`);
        queries++;
      }
    }
    assert.ok(queries >= 20, String(queries));
    // The extraction itself: it would catch a misspelt name.
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(tidings_nope_seconds_bucket{x="y"}[5m])))'), ['tidings_nope_seconds_bucket']);
  });
});
