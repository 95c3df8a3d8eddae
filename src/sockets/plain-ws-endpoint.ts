import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLOSE, type CloseReason, type LocalConnection } from '../delivery/local-connection.js';
import type { LocalHub } from '../delivery/local-hub.js';
import { asTidingsError, refuseUpgrade } from '../http/refuse.js';
import { TidingsError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import type { HandshakeGate } from './handshake-gate.js';
import { queryOf, socketPath } from './socket-path.js';
import type { Feeds } from '../history/feeds.js';
import { jsonFrameSink, sinceFromQuery } from '../history/resume-wire.js';

/** Plain RFC 6455 WebSockets at `/websockets/<path>`: one JSON text frame per event. */
export class PlainWsEndpoint {
  readonly #wss: WebSocketServer;
  readonly #gate: HandshakeGate;
  readonly #hub: LocalHub;
  readonly #registry: ConnectionRegistry;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #feeds: Feeds;

  constructor(deps: { gate: HandshakeGate; hub: LocalHub; registry: ConnectionRegistry; log: Logger; metrics: Metrics; maxPayload: number; feeds: Feeds }) {
    this.#feeds = deps.feeds;
    this.#gate = deps.gate;
    this.#hub = deps.hub;
    this.#registry = deps.registry;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    // Clients only listen; a small inbound cap keeps a misbehaving client from costing memory.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: Math.min(deps.maxPayload, 64 * 1024), perMessageDeflate: false });
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let a;
    let since;
    try {
      const query = queryOf(req.url);
      since = sinceFromQuery(query); // resume: checked before the gate admits anything
      a = await this.#gate.admit({ req, query, path: socketPath(req.url), transport: 'plain-websocket', isWebSocketUpgrade: true });
    } catch (e) {
      const err = asTidingsError(e);
      this.#metrics.refused.inc({ code: err.code });
      return refuseUpgrade(socket, err);
    }
    const admission = a;
    if (socket.destroyed) return void this.#registry.remove(admission.user.key, admission.connectionId);
    // Resume: the connection joins the hub and its feed reads the log (replay from `since`, or the
    // head: "from now") before the client sees the upgrade, so nothing it publishes after is missed.
    const feed = this.#feeds.open({ user: admission.user.key, path: admission.path, connectionId: admission.connectionId });
    let ws: WebSocket | null = null;
    let closedEarly: CloseReason | null = null;
    const conn: LocalConnection = {
      id: admission.connectionId,
      user: admission.user.key,
      sessionId: admission.session.id,
      sessionExpiresAt: admission.session.expiresAt,
      path: admission.path,
      transport: 'plain-websocket',
      send: (event, json) => feed.push(event, json),
      close: (why: CloseReason) => {
        if (!ws) return void (closedEarly = why);
        // Same shape as every other frame, so a client needs one parser; the close code says it too.
        if (why === CLOSE.sessionEnded && ws.readyState === ws.OPEN) ws.send('{"name":"session:invalid","args":[],"namespace":"/"}');
        ws.close(why.code, why.reason);
      },
    };
    this.#hub.add(conn);
    await feed.tryPrepare(since);
    const release = () => {
      feed.close();
      this.#hub.remove(conn);
      this.#registry.remove(admission.user.key, admission.connectionId).catch((e) => this.#log.warn({ err: String(e) }, 'could not remove a connection from the registry'));
    };
    if (socket.destroyed || closedEarly) {
      release();
      if (closedEarly) refuseUpgrade(socket, new TidingsError(closedEarly === CLOSE.sessionEnded ? 'TIDINGS_SESSION_UNKNOWN' : 'TIDINGS_SHUTTING_DOWN'));
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (w: WebSocket) => {
      ws = w;
      feed.attach(jsonFrameSink((json) => w.send(json)));
      this.#metrics.connections.inc({ transport: 'plain-websocket' });
      w.on('error', (err) => this.#log.debug({ err: String(err) }, 'plain websocket error'));
      w.once('close', () => {
        this.#metrics.connections.dec({ transport: 'plain-websocket' });
        release();
      });
    });
  }

  close(): void {
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }
}
