import type { Socket as EngineSocket } from 'engine.io';
import type { WebSocket } from 'ws';

/** The part of a net.Socket a hold needs. */
interface Corkable {
  cork(): void;
  uncork(): void;
}

interface EngineTransport {
  readonly name: string;
  writable: boolean;
  /** The `ws` WebSocket of Engine.IO's websocket transport; `_socket` is its TCP socket. */
  readonly socket?: { _socket?: Corkable | null };
}

interface EngineConn {
  readonly readyState: string;
  readonly transport: EngineTransport;
  flush(): void;
}

/**
 * Holds an Engine.IO socket's writes while several packets are emitted, then sends them as one
 * flush. Engine.IO hands its transport one packet and then waits for that write's callback before
 * it sends the rest, so N packets cost N writes on a WebSocket (and, with polling, only the first
 * reaches the pending poll). Marking the transport busy queues every packet in Engine.IO's write
 * buffer, where the backlog bound counts it; the release flushes them in one go, inside a cork
 * of the TCP socket, so a WebSocket's frames leave in one write.
 */
export class EngineWriteHold {
  readonly #conn: EngineConn;
  #depth = 0;
  /** The transport this hold marked busy; null when it was busy anyway (its own drain flushes). */
  #held: EngineTransport | null = null;

  constructor(conn: EngineSocket) {
    this.#conn = conn as unknown as EngineConn;
  }

  hold(): void {
    if (this.#depth++ > 0) return;
    const t = this.#conn.transport;
    if (this.#conn.readyState !== 'open' || !t.writable) return;
    t.writable = false;
    this.#held = t;
  }

  release(): void {
    if (this.#depth === 0 || --this.#depth > 0) return;
    const t = this.#held;
    this.#held = null;
    // Closed meanwhile (a slow consumer is discarded): nothing is to be sent any more. A graceful
    // close begun meanwhile waits for the buffer to drain: the flush below is what drains it.
    if (!t || t !== this.#conn.transport || this.#conn.readyState === 'closed') return;
    t.writable = true;
    const tcp = t.name === 'websocket' ? t.socket?._socket : null;
    tcp?.cork();
    this.#conn.flush();
    tcp?.uncork();
  }
}

/** Holds a plain WebSocket's frames in its TCP socket (cork) and writes them in one go on release. */
export class WsWriteHold {
  readonly #ws: WebSocket;
  #depth = 0;
  #corked: Corkable | null = null;

  constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  hold(): void {
    if (this.#depth++ > 0) return;
    // Corked bytes count in `bufferedAmount`, so the backlog bound sees them.
    const tcp = (this.#ws as unknown as { _socket?: Corkable | null })._socket;
    if (!tcp || this.#ws.readyState !== this.#ws.OPEN) return;
    tcp.cork();
    this.#corked = tcp;
  }

  release(): void {
    if (this.#depth === 0 || --this.#depth > 0) return;
    const tcp = this.#corked;
    this.#corked = null;
    tcp?.uncork();
  }
}
