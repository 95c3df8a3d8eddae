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
import { backlogBound } from './backlog-bound.js';
import { ConnectionSlot } from './connection-slot.js';
import type { HandshakeGate } from './handshake-gate.js';
import { queryOf, socketPath } from './socket-path.js';
import { upgradeRefusal } from './upgrade-check.js';
import { WsWriteHold } from './write-hold.js';

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
  /** Resume: each connection's stream of events in offset order, from `?since=` or from now. */
  feeds: Feeds;
}
import type { Feeds } from '../history/feeds.js';
import type { Offset } from '../history/offset.js';
import { jsonFrameSink, sinceFromQuery } from '../history/resume-wire.js';

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
    let since: Offset | null;
    try {
      const bad = upgradeRefusal(req);
      if (bad) {
        this.#d.metrics.refused.inc({ code: bad.error.code });
        return refuseUpgrade(socket, bad.error, bad.headers);
      }
      const query = queryOf(req.url);
      since = sinceFromQuery(query); // resume: checked before the gate admits anything
      const a = await this.#d.gate.admit({ req, query, path: socketPath(req.url), transport: 'plain-websocket', isWebSocketUpgrade: true });
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
    // Resume: the connection joins the hub and its feed reads the log (replay from `since`, or the
    // head: "from now") before the client sees the upgrade, so nothing it publishes after is missed.
    const feed = this.#d.feeds.open({ user: admission.user.key, path: admission.path, connectionId: admission.connectionId });
    let ws: WebSocket | null = null;
    /** Set with `ws`: a hold before the upgrade has nothing to hold. */
    let writes: WsWriteHold | null = null;
    let closedEarly: CloseReason | null = null;
    const conn: LocalConnection = {
      id: admission.connectionId,
      user: admission.user.key,
      sessionId: admission.session.id,
      sessionExpiresAt: admission.session.expiresAt,
      path: admission.path,
      transport: 'plain-websocket',
      send: (event, json) => feed.push(event, json),
      hold: () => writes?.hold(),
      release: () => writes?.release(),
      close: (why: CloseReason) => {
        if (!ws) return void (closedEarly = why);
        // Same shape as every other frame, so a client needs one parser; the close code says it too.
        if (why === CLOSE.sessionEnded && ws.readyState === ws.OPEN) ws.send('{"name":"session:invalid","args":[],"namespace":"/"}');
        ws.close(why.code, why.reason);
      },
    };
    // The feed's output, replay and live alike, bounded by the socket's backlog.
    const tooSlow = backlogBound({ conn, queued: () => ws?.bufferedAmount ?? 0, limit: () => this.#d.maxQueuedBytes(), metrics: this.#d.metrics, log: this.#d.log, beforeClose: () => leave() });
    const write = (json: string): void => {
      if (ws && !tooSlow()) ws.send(json);
    };
    const leave = (): void => {
      feed.close();
      this.#d.hub.remove(conn);
    };
    this.#d.hub.add(conn);
    await feed.tryPrepare(since);
    if (socket.destroyed || closedEarly) {
      leave();
      if (closedEarly) refuseUpgrade(socket, new TidingsError(closedEarly === CLOSE.sessionEnded ? 'TIDINGS_SESSION_UNKNOWN' : 'TIDINGS_SHUTTING_DOWN'));
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (w: WebSocket) => {
      ws = w;
      writes = new WsWriteHold(w);
      feed.attach(jsonFrameSink(write));
      this.#d.metrics.connections.inc({ transport: 'plain-websocket' });
      w.on('error', (err) => this.#d.log.debug({ err: String(err) }, 'plain websocket error'));
      w.on('pong', () => this.#awaitingPong.delete(w));
      w.once('close', () => {
        leave();
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
