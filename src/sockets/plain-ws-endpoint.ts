import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLOSE, type CloseReason, type LocalConnection } from '../delivery/local-connection.js';
import type { LocalHub } from '../delivery/local-hub.js';
import { TidingsError } from '../errors.js';
import { asTidingsError, refuseUpgrade } from '../http/refuse.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import { ConnectionSlot } from './connection-slot.js';
import type { HandshakeGate } from './handshake-gate.js';
import { queryOf, socketPath } from './socket-path.js';
import { upgradeRefusal } from './upgrade-check.js';

export interface PlainWsEndpointDeps {
  gate: HandshakeGate;
  hub: LocalHub;
  registry: ConnectionRegistry;
  log: Logger;
  metrics: Metrics;
  maxPayload: number;
  /** How often every socket is pinged (tidings.websocket.pingIntervalMs). */
  pingIntervalMs: number;
  /** Read on every send: the backlog past which a connection is closed as a slow consumer. */
  maxQueuedBytes(): number;
}

/** Plain RFC 6455 WebSockets at `/websockets/<path>`: one JSON text frame per event. */
export class PlainWsEndpoint {
  readonly #wss: WebSocketServer;
  readonly #d: PlainWsEndpointDeps;
  readonly #keepalive: NodeJS.Timeout;
  /** Sockets that have not answered the last ping yet. */
  readonly #awaitingPong = new WeakSet<WebSocket>();

  constructor(deps: PlainWsEndpointDeps) {
    this.#d = deps;
    // Clients only listen; a small inbound cap keeps a misbehaving client from costing memory.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: Math.min(deps.maxPayload, 64 * 1024), perMessageDeflate: false });
    // upgradeRefusal() makes ws's checks first; should ws still refuse, the answer is ours too.
    this.#wss.on('wsClientError', (err, socket) => refuseUpgrade(socket, new TidingsError('TIDINGS_BAD_UPGRADE', err.message)));
    // Proxies cut a tunnel that carries no traffic (nginx proxy_read_timeout, HAProxy timeout tunnel,
    // Apache ProxyTimeout): a ping keeps it busy, and a peer that missed the previous ping is gone.
    this.#keepalive = setInterval(() => this.#ping(), deps.pingIntervalMs).unref();
  }

  #ping(): void {
    for (const ws of this.#wss.clients) {
      if (this.#awaitingPong.has(ws)) {
        this.#d.log.debug('plain websocket did not answer a ping: closing it');
        ws.terminate();
        continue;
      }
      this.#awaitingPong.add(ws);
      ws.ping();
    }
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let slot: ConnectionSlot;
    try {
      const bad = upgradeRefusal(req);
      if (bad) {
        this.#d.metrics.refused.inc({ code: bad.error.code });
        return refuseUpgrade(socket, bad.error, bad.headers);
      }
      const a = await this.#d.gate.admit({ req, query: queryOf(req.url), path: socketPath(req.url), transport: 'plain-websocket', isWebSocketUpgrade: true });
      slot = new ConnectionSlot(a, this.#d.registry, this.#d.log);
    } catch (e) {
      const err = asTidingsError(e);
      this.#d.metrics.refused.inc({ code: err.code });
      return refuseUpgrade(socket, err);
    }
    // The slot lives as long as the TCP connection, whether ws completes the upgrade or not.
    slot.releaseWhenClosed(socket);
    // A client that hung up (or half-closed) while it was admitted gets no upgrade.
    if (socket.destroyed || !socket.readable || !socket.writable) return void socket.destroy();
    const admission = slot.admission;
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      let dropped = false;
      const conn: LocalConnection = {
        id: admission.connectionId,
        user: admission.user.key,
        sessionId: admission.session.id,
        sessionExpiresAt: admission.session.expiresAt,
        path: admission.path,
        transport: 'plain-websocket',
        send: (_event, json) => {
          if (dropped) return;
          const queued = ws.bufferedAmount;
          if (queued > this.#d.maxQueuedBytes()) {
            dropped = true;
            this.#d.metrics.slowConsumers.inc({ transport: 'plain-websocket' });
            this.#d.log.warn({ user: admission.user.key, connection: admission.connectionId, transport: 'plain-websocket', queued }, 'closed a slow consumer: too much waiting to be sent');
            this.#d.hub.remove(conn);
            conn.close(CLOSE.slowConsumer);
            return;
          }
          ws.send(json);
        },
        close: (why: CloseReason) => {
          // Same shape as every other frame, so a client needs one parser; the close code says it too.
          if (why === CLOSE.sessionEnded && ws.readyState === ws.OPEN) ws.send('{"name":"session:invalid","args":[],"namespace":"/"}');
          ws.close(why.code, why.reason);
        },
      };
      this.#d.hub.add(conn);
      this.#d.metrics.connections.inc({ transport: 'plain-websocket' });
      ws.on('error', (err) => this.#d.log.debug({ err: String(err) }, 'plain websocket error'));
      ws.on('pong', () => this.#awaitingPong.delete(ws));
      ws.once('close', () => {
        this.#d.hub.remove(conn);
        this.#d.metrics.connections.dec({ transport: 'plain-websocket' });
      });
    });
  }

  close(): void {
    clearInterval(this.#keepalive);
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }
}
