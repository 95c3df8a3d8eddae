import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric tidings exports, on a registry of its own so several nodes can live in one process (tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly published = new Counter({ name: 'tidings_events_published_total', help: 'Events accepted for publishing', labelNames: ['source'], registers: [this.registry] });
  readonly duplicates = new Counter({ name: 'tidings_events_duplicate_total', help: 'Publishes dropped as repeats of an idempotency key', registers: [this.registry] });
  readonly deliveredLocal = new Counter({ name: 'tidings_deliveries_total', help: 'Events written to connections on this node', labelNames: ['origin'], registers: [this.registry] });
  readonly remoteBatchesIn = new Counter({ name: 'tidings_remote_batches_received_total', help: 'Remote-delivery batches received by this node', registers: [this.registry] });
  readonly connections = new Gauge({ name: 'tidings_connections', help: 'Open connections on this node', labelNames: ['transport'], registers: [this.registry] });
  readonly refused = new Counter({ name: 'tidings_handshakes_refused_total', help: 'Refused handshakes by error code', labelNames: ['code'], registers: [this.registry] });
  readonly slowConsumers = new Counter({ name: 'tidings_slow_consumer_disconnects_total', help: 'Connections closed because more than tidings.connections.maxQueuedBytes waited to be sent to them', labelNames: ['transport'], registers: [this.registry] });
  readonly notifyUnknownUser = new Counter({ name: 'tidings_notify_unknown_user_total', help: 'Dovecot notifications for a user the directory does not know', registers: [this.registry] });
  readonly notifyReceived = new Counter({ name: 'tidings_notify_received_total', help: 'Dovecot notifications received', labelNames: ['event'], registers: [this.registry] });

  constructor(opts: { defaults?: boolean } = {}) {
    if (opts.defaults) collectDefaultMetrics({ register: this.registry });
  }
}
