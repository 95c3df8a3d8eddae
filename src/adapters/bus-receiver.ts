import type { BusMessage } from '../ports/cluster-bus.js';
import { decodeBusMessage } from './bus-codec.js';
import type { LogLike } from './log-like.js';

/**
 * The receiving end every ClusterBus shares: decodes a message text, drops what is malformed
 * (logged), and hands the message to each handler; a handler that throws costs only that
 * handler's work on that message, never the next message or the reader loop.
 */
export class BusReceiver {
  readonly #nodeId: string;
  readonly #log?: LogLike;
  readonly #handlers: ((m: BusMessage) => void)[] = [];
  /** Unknown types are logged once each: a newer node may send them on every event. */
  readonly #unknownSeen = new Set<string>();

  constructor(nodeId: string, log?: LogLike) {
    this.#nodeId = nodeId;
    this.#log = log;
  }

  add(handler: (m: BusMessage) => void): void {
    this.#handlers.push(handler);
  }

  receive(text: string, source: 'inbox' | 'broadcast'): void {
    const d = decodeBusMessage(text);
    if (!d.ok) {
      if (d.why !== 'unknown type') this.#log?.warn({ nodeId: this.#nodeId, source, bytes: text.length }, `bus message dropped: ${d.why}`);
      else if (!this.#unknownSeen.has(d.type) && this.#unknownSeen.size < 100) {
        this.#unknownSeen.add(d.type);
        this.#log?.info({ nodeId: this.#nodeId, source, type: d.type }, 'bus message of a type this node does not know ignored (a newer node?)');
      }
      return;
    }
    for (const h of this.#handlers) {
      try {
        h(d.message);
      } catch (err) {
        this.#log?.warn({ nodeId: this.#nodeId, type: d.message.type, err: String(err) }, 'bus message handler threw');
      }
    }
  }
}
