import { CLOSE, type LocalConnection } from '../delivery/local-connection.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/**
 * The outbound-queue bound of one connection (`tidings.connections.maxQueuedBytes`), the same for
 * every socket kind: checked before each send, replayed or live. Past it the connection is closed
 * as a slow consumer once, counted and logged, and every later send is dropped.
 */
export function backlogBound(d: {
  conn: LocalConnection;
  /** Bytes already waiting to be sent to this connection. */
  queued(): number;
  limit(): number;
  metrics: Pick<Metrics, 'slowConsumers'>;
  log: Logger;
  /** Runs before the close (e.g. leaving the hub at once, not after ws's close handshake). */
  beforeClose?: () => void;
}): () => boolean {
  let dropped = false;
  return () => {
    if (dropped) return true;
    const queued = d.queued();
    if (queued <= d.limit()) return false;
    dropped = true;
    const transport = d.conn.transport;
    d.metrics.slowConsumers.inc({ transport });
    d.log.warn({ user: d.conn.user, connection: d.conn.id, transport, queued }, 'closed a slow consumer: too much waiting to be sent');
    d.beforeClose?.();
    d.conn.close(CLOSE.slowConsumer);
    return true;
  };
}
