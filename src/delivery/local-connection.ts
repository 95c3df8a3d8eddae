import type { PushEvent, TransportKind, UserKey } from '../domain/types.js';

/** Close reasons shared by every transport; WebSocket close codes mirror HTTP statuses in the 4xxx range. */
export const CLOSE = {
  goingAway: { code: 1001, reason: 'server shutting down' },
  sessionEnded: { code: 4401, reason: 'session:invalid' },
  /** More than `tidings.connections.maxQueuedBytes` waited to be sent: reconnect. */
  slowConsumer: { code: 4429, reason: 'slow consumer' },
} as const;
export type CloseReason = (typeof CLOSE)[keyof typeof CLOSE] | GoingAway;

/**
 * A shutdown's close (1001) with the delay this connection's client is asked to wait before it
 * reconnects: spread per connection, so a restarting node's clients do not all come back at once.
 * A plain WebSocket reads it from the close reason, a Socket.IO client from `server:restart`.
 */
export interface GoingAway {
  readonly code: 1001;
  readonly reason: string;
  readonly reconnectAfterMs: number;
}

export function goingAway(reconnectAfterMs: number): GoingAway {
  return { code: 1001, reason: `server shutting down; reconnectAfterMs=${reconnectAfterMs}`, reconnectAfterMs };
}

/** One open connection on this node, whatever its transport. */
export interface LocalConnection {
  readonly id: string;
  readonly user: UserKey;
  readonly sessionId: string;
  /** The session's expiry as the gate saw it when this connection was admitted. */
  readonly sessionExpiresAt: number;
  readonly path: string;
  readonly transport: TransportKind;
  /** `json` is the event's wire JSON `{name,args,namespace,id}`, serialized once for every connection. */
  send(event: PushEvent, json: string): void;
  /**
   * Several sends follow (one remote batch for this user): queue them instead of writing each,
   * until the matching `release()` writes them out together, one socket write where the transport
   * allows. Pairs nest. The outbound-queue bound still applies to every send in between.
   */
  hold(): void;
  release(): void;
  close(why: CloseReason): void;
}
