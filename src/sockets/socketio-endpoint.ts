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
import { asConnectError, offsetFromAuth, socketIoSink } from '../history/resume-wire.js';
import type { ResumeFeed } from '../history/resume-feed.js';
import { TidingsError } from '../errors.js';

/** A connection's feed, set up by the resume middleware, taken over by #onSocket. */
interface Feed {
  readonly feed: ResumeFeed;
  readonly conn: LocalConnection;
  leave(): void;
  connected(): void;
}

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
    this.io.use((socket, next) => void this.#openFeed(socket).then(() => next(), (e: unknown) => next(asConnectError(e))));
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

  /**
   * Resume, as Socket.IO middleware (it runs before the CONNECT is acknowledged): the connection
   * joins the hub and its feed reads the log (replay from `auth.offset`, or the head: "from now")
   * before the client sees `connect`, so nothing it publishes after is missed. A garbage offset is
   * a connect_error with `data: {code, message}`.
   */
  async #openFeed(socket: Socket): Promise<void> {
    const a = (socket.request as GatedRequest).tidings;
    if (!a) return; // #onSocket disconnects it
    const since = offsetFromAuth(socket.handshake.auth);
    const feed = this.#feeds.open({ user: a.user.key, path: a.path, connectionId: a.connectionId });
    let connected = false;
    let closedEarly: CloseReason | null = null;
    const conn: LocalConnection = {
      id: a.connectionId,
      user: a.user.key,
      sessionId: a.session.id,
      sessionExpiresAt: a.session.expiresAt,
      path: a.path,
      transport: a.transport,
      send: (event: PushEvent, json: string) => feed.push(event, json),
      close: (why: CloseReason) => {
        if (!connected) return void (closedEarly = why);
        if (why === CLOSE.sessionEnded) socket.emit('session:invalid');
        // A polling client on a stopping node will never poll again to fetch a close packet:
        // discard the transport instead of letting Engine.IO wait 30 s for that poll.
        if (why === CLOSE.goingAway && socket.conn.transport.name === 'polling') socket.conn.close(true);
        else socket.disconnect(true);
      },
    };
    const leave = () => {
      feed.close();
      this.#hub.remove(conn);
    };
    this.#hub.add(conn);
    // The client may go before its CONNECT is answered; the hub must not keep it then.
    socket.conn.once('close', leave);
    await feed.tryPrepare(since);
    if (closedEarly) {
      leave();
      throw new TidingsError(closedEarly === CLOSE.sessionEnded ? 'TIDINGS_SESSION_UNKNOWN' : 'TIDINGS_SHUTTING_DOWN');
    }
    (socket.data as { feed?: Feed }).feed = { feed, conn, leave, connected: () => void (connected = true) };
  }

  #onSocket(socket: Socket): void {
    const a = (socket.request as GatedRequest).tidings;
    const f = (socket.data as { feed?: Feed }).feed;
    if (!a || !f) {
      socket.disconnect(true);
      return;
    }
    const transport = () => (socket.conn.transport.name === 'websocket' ? 'websocket' : 'polling');
    f.connected();
    f.feed.attach(socketIoSink(socket));
    const gauge = transport();
    this.#metrics.connections.inc({ transport: gauge });
    socket.conn.once('upgrade', () => {
      this.#metrics.connections.dec({ transport: 'polling' });
      this.#metrics.connections.inc({ transport: 'websocket' });
    });
    socket.once('disconnect', () => {
      f.leave();
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
