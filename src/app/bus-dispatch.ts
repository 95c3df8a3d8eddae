import type { BusMessage, RemoteBatchItem } from '../ports/cluster-bus.js';

/** What each bus message asks this node to do. */
export interface BusTargets {
  readonly nodeId: string;
  /** A batch of events for this node's sockets. */
  deliver(batch: readonly RemoteBatchItem[]): void;
  /** A session ended on some node: close its sockets here. */
  endSession(sessionId: string): void;
  /** Run-time config values changed on another node. */
  refreshConfig(): void;
  /** Another node was asked to reload the files. */
  reload(): void;
}

/**
 * Routes bus messages, whichever bus carried them. A node's own `config-changed` and `reload`
 * are ignored: it did that work before it broadcast them. Its own `session-ended` is not: closing
 * sockets is idempotent. Adding a message type without a case here does not compile.
 */
export function busDispatch(t: BusTargets): (m: BusMessage) => void {
  return (m) => {
    switch (m.type) {
      case 'deliver':
        return t.deliver(m.batch);
      case 'session-ended':
        return t.endSession(m.sessionId);
      case 'config-changed':
        if (m.from !== t.nodeId) t.refreshConfig();
        return;
      case 'reload':
        if (m.from !== t.nodeId) t.reload();
        return;
      default: {
        const unknown: never = m;
        return unknown;
      }
    }
  };
}
