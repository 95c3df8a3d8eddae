import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds, from a sub-millisecond Redis round trip to a remote delivery held for several seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Every metric tidings exports, on a registry of its own so several nodes can live in one process (tests).
 * docs/grafana-dashboard.json queries them (a test checks that every metric it names exists here).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #publishedSums = new PendingCounts('source');
  readonly #deliveredSums = new PendingCounts('origin');
  readonly published = new Counter({ name: 'tidings_events_published_total', help: 'Events accepted for publishing', labelNames: ['source'], registers: [this.registry], collect: this.#publishedSums.collector() });
  readonly duplicates = new Counter({ name: 'tidings_events_duplicate_total', help: 'Publishes dropped as repeats of an idempotency key', registers: [this.registry] });
  readonly deliveredLocal = new Counter({ name: 'tidings_deliveries_total', help: 'Events written to connections on this node', labelNames: ['origin'], registers: [this.registry], collect: this.#deliveredSums.collector() });
  readonly remoteBatchesIn = new Counter({ name: 'tidings_remote_batches_received_total', help: 'Remote-delivery batches received by this node', registers: [this.registry] });
  readonly connections = new Gauge({ name: 'tidings_connections', help: 'Open connections on this node', labelNames: ['transport'], registers: [this.registry] });
  readonly refused = new Counter({ name: 'tidings_handshakes_refused_total', help: 'Refused handshakes by error code', labelNames: ['code'], registers: [this.registry] });
  readonly slowConsumers = new Counter({ name: 'tidings_slow_consumer_disconnects_total', help: 'Connections closed because more than tidings.connections.maxQueuedBytes waited to be sent to them', labelNames: ['transport'], registers: [this.registry] });
  readonly notifyUnknownUser = new Counter({ name: 'tidings_notify_unknown_user_total', help: 'Dovecot notifications for a user the directory does not know', registers: [this.registry] });
  readonly notifyReceived = new Counter({ name: 'tidings_notify_received_total', help: 'Dovecot notifications received', labelNames: ['event'], registers: [this.registry] });

  // Remote-delivery buffer (events for connections on other nodes).
  #readRemotePending: () => number = () => 0;
  readonly remotePending: Gauge = new Gauge({ name: 'tidings_remote_buffer_pending', help: 'Event copies for other nodes not yet sent (buffered, queued for an unreachable node, or in flight)', registers: [this.registry], collect: (): void => this.remotePending.set(this.#readRemotePending()) });
  readonly remoteDropped = new Counter({ name: 'tidings_remote_buffer_dropped_total', help: 'Event copies for other nodes dropped because tidings.remote.maxPending was exceeded', registers: [this.registry] });
  readonly remoteCoalesced = new Counter({ name: 'tidings_remote_coalesced_total', help: 'Events for another node that joined one already buffered for the same user and path filter (identical ones collapsed)', registers: [this.registry] });
  readonly remoteFlush = new Histogram({ name: 'tidings_remote_flush_seconds', help: 'From the first event of a batch being buffered to the batch being handed to the bus', buckets: LATENCY_BUCKETS, registers: [this.registry] });

  // Cluster backend.
  readonly redisRoundTrip = new Histogram({ name: 'tidings_redis_roundtrip_seconds', help: 'Round trip of a write to Redis (the bus append of every remote batch and readiness ping)', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly busLag = new Histogram({ name: 'tidings_bus_lag_seconds', help: 'Time a message takes through the cluster bus to its reader: the readiness ping through this node\'s own inbox, every 2 s', buckets: LATENCY_BUCKETS, registers: [this.registry] });

  // Resume, slow consumers, balancers, logins.
  readonly historyReplays = new Counter({ name: 'tidings_history_replays_total', help: 'Resumes from an offset: result=recovered (the missed events were replayed) or not_recovered (too old, another epoch, ahead of the log, or the log could not be read)', labelNames: ['result'], registers: [this.registry] });
  readonly relayedPolls = new Counter({ name: 'tidings_relayed_polls_total', help: 'Engine.IO polling requests served for a session whose owner is another node', registers: [this.registry] });
  readonly loginFailures = new Counter({ name: 'tidings_login_failures_total', help: 'Failed logins by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly loginLimited = new Counter({ name: 'tidings_login_limited_total', help: 'Logins refused with 429 because an IP or a login had too many failures', registers: [this.registry] });

  constructor(opts: { defaults?: boolean } = {}) {
    if (opts.defaults) collectDefaultMetrics({ register: this.registry });
  }

  /** Gauges read at scrape time from the component that knows the number. */
  sampleRemotePending(read: () => number): void {
    this.#readRemotePending = read;
  }

  /** Per event, so a plain sum: prom-client's own `inc` hashes and validates the labels on every call. */
  countPublished(source: string): void {
    this.#publishedSums.add(source, 1);
  }

  /** Per delivery, so a plain sum, as countPublished. */
  countDelivered(origin: 'local' | 'remote', n: number): void {
    this.#deliveredSums.add(origin, n);
  }
}

/**
 * Counts added as plain numbers by the hot path, by the value of a counter's one label, and
 * moved into that counter when /metrics is read (its `collect`). prom-client's `inc` with labels
 * costs over a microsecond each (hashing, validation); a Map update costs a few nanoseconds.
 */
class PendingCounts {
  readonly #label: string;
  readonly #sums = new Map<string, number>();

  constructor(label: string) {
    this.#label = label;
  }

  add(value: string, n: number): void {
    this.#sums.set(value, (this.#sums.get(value) ?? 0) + n);
  }

  /** The counter's `collect`: prom-client calls it with the counter as `this` before every read. */
  collector(): (this: Counter<string>) => void {
    const label = this.#label;
    const sums = this.#sums;
    return function (this: Counter<string>) {
      for (const [value, n] of sums) this.inc({ [label]: value }, n);
      sums.clear();
    };
  }
}
