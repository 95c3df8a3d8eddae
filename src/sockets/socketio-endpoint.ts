import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server as EngineServer } from 'engine.io';
import { Server as IoServer, type Socket } from 'socket.io';
import { CLOSE, type CloseReason, type LocalConnection } from '../delivery/local-connection.js';
import type { LocalHub } from '../delivery/local-hub.js';
import type { PushEvent } from '../domain/types.js';
import { asTidingsError, refuseRequest, refuseUpgrade } from '../http/refuse.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import type { Admission, HandshakeGate } from './handshake-gate.js';
import { queryOf, socketPath } from './socket-path.js';
import type { Feeds } from '../history/feeds.js';
import { checkAuthOffset, offsetFromAuth, socketIoSink } from '../history/resume-wire.js';

type GatedRequest = IncomingMessage & { tidings?: Admission };

/**
 * Socket.IO v4 on `/socket.io/…`, both transports. tidings owns the HTTP request and upgrade
 * dispatch, so the gate runs before Engine.IO sees anything and refusals carry our status and JSON.
 */
export class SocketIoEndpoint {
  readonly engine: EngineServer;
  readonly io: IoServer;
  readonly #gate: HandshakeGate;
  readonly #hub: LocalHub;
  readonly #registry: ConnectionRegistry;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #feeds: Feeds;

  constructor(deps: { gate: HandshakeGate; hub: LocalHub; registry: ConnectionRegistry; log: Logger; metrics: Metrics; pingIntervalMs: number; pingTimeoutMs: number; maxBodyBytes: number; feeds: Feeds }) {
    this.#feeds = deps.feeds;
    this.#gate = deps.gate;
    this.#hub = deps.hub;
    this.#registry = deps.registry;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.engine = new EngineServer({
      pingInterval: deps.pingIntervalMs,
      pingTimeout: deps.pingTimeoutMs,
      maxHttpBufferSize: deps.maxBodyBytes,
      transports: ['polling', 'websocket'],
      allowUpgrades: true,
      cookie: false,
    });
    this.io = new IoServer({ serveClient: false, connectionStateRecovery: undefined });
    this.io.bind(this.engine as never);
    this.engine.on('connection', (conn: { request: GatedRequest; once(ev: 'close', fn: () => void): void }) => {
      const a = conn.request.tidings;
      if (a) conn.once('close', () => void this.#release(a));
    });
    this.engine.on('connection_error', (err: { req: GatedRequest }) => {
      const a = err.req?.tidings;
      if (a) void this.#release(a);
    });
    this.io.use(checkAuthOffset); // resume: a garbage `auth.offset` is a connect_error
    this.io.on('connection', (socket) => this.#onSocket(socket));
  }

  async handleRequest(req: GatedRequest, res: ServerResponse): Promise<void> {
    const query = queryOf(req.url);
    if (!query.has('sid')) {
      try {
        req.tidings = await this.#gate.admit({ req, query, path: socketPath(req.url), transport: query.get('transport') === 'websocket' ? 'websocket' : 'polling', isWebSocketUpgrade: false });
      } catch (e) {
        const err = asTidingsError(e);
        this.#metrics.refused.inc({ code: err.code });
        return refuseRequest(res, err);
      }
    }
    this.engine.handleRequest(req as never, res as never);
  }

  async handleUpgrade(req: GatedRequest, socket: Duplex, head: Buffer): Promise<void> {
    const query = queryOf(req.url);
    const g = { req, query, path: socketPath(req.url), transport: 'websocket' as const, isWebSocketUpgrade: true };
    try {
      // A polling session upgrading keeps its admission; a direct WebSocket handshake is admitted here.
      if (query.has('sid')) await this.#gate.check(g);
      else req.tidings = await this.#gate.admit(g);
    } catch (e) {
      const err = asTidingsError(e);
      this.#metrics.refused.inc({ code: err.code });
      return refuseUpgrade(socket, err);
    }
    this.engine.handleUpgrade(req as never, socket as never, head);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.io.close(() => resolve());
    });
  }

  #onSocket(socket: Socket): void {
    const a = (socket.request as GatedRequest).tidings;
    if (!a) {
      socket.disconnect(true);
      return;
    }
    const transport = () => (socket.conn.transport.name === 'websocket' ? 'websocket' : 'polling');
    // Resume: every event goes through the connection's feed, which replays from `auth.offset` first.
    const feed = this.#feeds.open({ user: a.user.key, path: a.path, connectionId: a.connectionId });
    const conn: LocalConnection = {
      id: a.connectionId,
      user: a.user.key,
      sessionId: a.session.id,
      sessionExpiresAt: a.session.expiresAt,
      path: a.path,
      transport: a.transport,
      send: (event: PushEvent, json: string) => feed.push(event, json),
      close: (why: CloseReason) => {
        if (why === CLOSE.sessionEnded) socket.emit('session:invalid');
        // A polling client on a stopping node will never poll again to fetch a close packet:
        // discard the transport instead of letting Engine.IO wait 30 s for that poll.
        if (why === CLOSE.goingAway && socket.conn.transport.name === 'polling') socket.conn.close(true);
        else socket.disconnect(true);
      },
    };
    this.#hub.add(conn);
    void feed.start(offsetFromAuth(socket.handshake.auth), socketIoSink(socket));
    const gauge = transport();
    this.#metrics.connections.inc({ transport: gauge });
    socket.conn.once('upgrade', () => {
      this.#metrics.connections.dec({ transport: 'polling' });
      this.#metrics.connections.inc({ transport: 'websocket' });
    });
    socket.once('disconnect', () => {
      feed.close();
      this.#hub.remove(conn);
      this.#metrics.connections.dec({ transport: transport() });
    });
    this.#log.debug({ user: a.user.key, connection: a.connectionId, transport: gauge }, 'socket.io connected');
  }

  async #release(a: Admission): Promise<void> {
    try {
      await this.#registry.remove(a.user.key, a.connectionId);
    } catch (e) {
      this.#log.warn({ err: String(e), user: a.user.key }, 'could not remove a connection from the registry');
    }
  }
}
