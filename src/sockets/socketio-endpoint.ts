import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server as EngineServer, type Socket as EngineSocket } from 'engine.io';
import { Server as IoServer, type Socket } from 'socket.io';
import { CLOSE, type CloseReason, type LocalConnection } from '../delivery/local-connection.js';
import type { LocalHub } from '../delivery/local-hub.js';
import type { PushEvent, TransportKind } from '../domain/types.js';
import { TidingsError } from '../errors.js';
import { asTidingsError, refuseRequest, refuseUpgrade } from '../http/refuse.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import { backlogBound } from './backlog-bound.js';
import { ConnectionSlot } from './connection-slot.js';
import { EngineBacklog } from './engine-backlog.js';
import { answerErrorsInJson, engineRequestRefusal, fromEngineError } from './engine-errors.js';
import { newSid, ownerOfSid } from './engine-sid.js';
import type { Admission, HandshakeGate } from './handshake-gate.js';
import type { Refusal } from './refusal.js';
import { queryOf, socketPath } from './socket-path.js';
import { upgradeRefusal } from './upgrade-check.js';
import { EngineWriteHold } from './write-hold.js';
import type { Feeds } from '../history/feeds.js';
import type { FeedSink, ResumeFeed } from '../history/resume-feed.js';
import { asConnectError, offsetFromAuth, socketIoSink } from '../history/resume-wire.js';

/** A connection's feed, set up by the resume middleware, taken over by #onSocket. */
interface Feed {
  readonly feed: ResumeFeed;
  /** Where the feed writes: Socket.IO emits, bounded by the connection's backlog. */
  readonly sink: FeedSink;
  leave(): void;
  connected(): void;
}

/**
 * A handshake request that passed the gate carries the slot it was admitted with, and the query
 * the gate read as `_query`: Engine.IO parses `req.url` itself only when that is unset, so the sid
 * it serves is always the one the gate checked.
 */
type GatedRequest = IncomingMessage & { tidings?: ConnectionSlot; _query?: Record<string, string> };

export interface SocketIoEndpointDeps {
  gate: HandshakeGate;
  hub: LocalHub;
  registry: ConnectionRegistry;
  log: Logger;
  metrics: Metrics;
  nodeId: string;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxBodyBytes: number;
  /** Read on every send: the backlog past which a connection is closed as a slow consumer. */
  maxQueuedBytes(): number;
  /** False while the node stops: no new Engine.IO session is opened, open ones are still served. */
  accepting(): boolean;
  /** Resume: each connection's stream of events in offset order, from `auth.offset` or from now. */
  feeds: Feeds;
}

/**
 * Socket.IO v4 on `/socket.io/…`, both transports. Every request reaches the gate before
 * Engine.IO sees it: a handshake is admitted (and takes a connection slot); a request that names
 * a `sid` (poll, send, upgrade) must pass the same checks and belong to the login session that
 * opened that sid. Refusals carry our status and JSON, Engine.IO's own included.
 */
export class SocketIoEndpoint {
  readonly engine: EngineServer;
  readonly io: IoServer;
  readonly #d: SocketIoEndpointDeps;
  /** Engine.IO sessions of this node → what their handshake was admitted as. */
  readonly #bySid = new Map<string, Admission>();
  /** What Engine.IO's `connection_error` said about a request, for the answer that follows it. */
  readonly #engineErrors = new WeakMap<IncomingMessage, TidingsError>();
  /** The raw socket of an upgrade handed to Engine.IO, so that its refusal can be answered in JSON. */
  readonly #upgradeSockets = new WeakMap<IncomingMessage, Duplex>();
  /** Engine.IO sessions not yet closed (a disconnected polling one waits for its last poll). */
  readonly #open = new Set<EngineSocket>();

  constructor(deps: SocketIoEndpointDeps) {
    this.#d = deps;
    this.engine = new EngineServer({
      pingInterval: deps.pingIntervalMs,
      pingTimeout: deps.pingTimeoutMs,
      maxHttpBufferSize: deps.maxBodyBytes,
      transports: ['polling', 'websocket'],
      allowUpgrades: true,
      cookie: false,
    });
    this.engine.generateId = () => newSid(deps.nodeId);
    this.io = new IoServer({ serveClient: false, connectionStateRecovery: undefined });
    this.io.bind(this.engine as never);
    this.engine.on('connection', (conn: EngineSocket) => this.#onEngineSocket(conn));
    this.engine.on('connection_error', (e: { req: GatedRequest; code: number; context?: Record<string, unknown> }) => {
      e.req?.tidings?.release();
      const err = fromEngineError(e.code, e.context);
      this.#d.metrics.refused.inc({ code: err.code });
      this.#engineErrors.set(e.req, err);
      const socket = this.#upgradeSockets.get(e.req);
      // Engine.IO then writes its text/html 400 only if the socket is still writable: it is not.
      if (socket) refuseUpgrade(socket, err);
    });
    // A handshake `ws` refuses although the checks before it passed: still our JSON.
    (this.engine as unknown as { ws?: { on(ev: 'wsClientError', fn: (err: Error, socket: Duplex) => void): void } }).ws?.on('wsClientError', (err, socket) => refuseUpgrade(socket, new TidingsError('TIDINGS_BAD_UPGRADE', err.message)));
    this.io.use((socket, next) => void this.#openFeed(socket).then(() => next(), (e: unknown) => next(asConnectError(e))));
    this.io.on('connection', (socket) => this.#onSocket(socket));
  }

  async handleRequest(req: GatedRequest, res: ServerResponse): Promise<void> {
    const query = queryOf(req.url);
    const sid = query.get('sid');
    try {
      const shape = engineRequestRefusal(req.method, query, false) ?? this.#bodyRefusal(req);
      if (shape) return this.#refuse(res, shape);
      if (sid !== null) await this.#checkSid(req, query, sid, false);
      else {
        if (!this.#d.accepting()) return this.#refuse(res, { error: new TidingsError('TIDINGS_SHUTTING_DOWN') });
        const a = await this.#d.gate.admit({ req, query, path: socketPath(req.url), transport: 'polling', isWebSocketUpgrade: false });
        req.tidings = new ConnectionSlot(a, this.#d.registry, this.#d.log);
        // The client went away while it was being admitted: nobody would ever poll this session.
        if (res.destroyed) return req.tidings.release();
      }
    } catch (e) {
      return this.#refuse(res, { error: asTidingsError(e) });
    }
    answerErrorsInJson(res, () => this.#engineErrors.get(req));
    req._query = Object.fromEntries(query);
    this.engine.handleRequest(req as never, res as never);
  }

  async handleUpgrade(req: GatedRequest, socket: Duplex, head: Buffer): Promise<void> {
    const query = queryOf(req.url);
    const sid = query.get('sid');
    try {
      const shape = engineRequestRefusal(req.method, query, true) ?? upgradeRefusal(req);
      if (shape) return this.#refuseUpgrade(socket, shape);
      // A polling session upgrading keeps its admission; a direct WebSocket handshake is admitted here.
      if (sid !== null) await this.#checkSid(req, query, sid, true);
      else {
        if (!this.#d.accepting()) return this.#refuseUpgrade(socket, { error: new TidingsError('TIDINGS_SHUTTING_DOWN') });
        const a = await this.#d.gate.admit({ req, query, path: socketPath(req.url), transport: 'websocket', isWebSocketUpgrade: true });
        req.tidings = new ConnectionSlot(a, this.#d.registry, this.#d.log);
        req.tidings.releaseWhenClosed(socket);
      }
    } catch (e) {
      return this.#refuseUpgrade(socket, { error: asTidingsError(e) });
    }
    if (socket.destroyed || !socket.readable || !socket.writable) return void socket.destroy();
    this.#upgradeSockets.set(req, socket);
    req._query = Object.fromEntries(query);
    this.engine.handleUpgrade(req as never, socket as never, head);
  }

  /**
   * Resolves true once Engine.IO holds no session, false at `deadline` (ms since the epoch). A
   * disconnected polling session lives on until its client fetched the buffered packets.
   */
  idle(deadline: number): Promise<boolean> {
    const open = [...this.#open];
    if (open.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let left = open.length;
      const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      for (const c of open) {
        c.once('close', () => {
          if (--left === 0) {
            clearTimeout(timer);
            resolve(true);
          }
        });
      }
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.io.close(() => resolve());
    });
  }

  /**
   * A request inside an Engine.IO session: the gate's checks (Origin, session, secret, …), and
   * the session must be the login session that opened the sid. The session is not slid: an
   * open socket does not keep its login alive.
   */
  async #checkSid(req: IncomingMessage, query: URLSearchParams, sid: string, upgrade: boolean): Promise<void> {
    const { session } = await this.#d.gate.verify({ req, query, path: socketPath(req.url), transport: upgrade ? 'websocket' : 'polling', isWebSocketUpgrade: upgrade });
    const opened = this.#bySid.get(sid);
    if (!opened) {
      const owner = ownerOfSid(sid);
      throw new TidingsError('TIDINGS_SID_UNKNOWN', owner !== null && owner !== this.#d.nodeId ? `The Engine.IO session belongs to node '${owner}', not to this one` : undefined);
    }
    // Same session id means same secret: the gate has just compared the cookie with it.
    if (opened.session.id !== session.id) throw new TidingsError('TIDINGS_SID_FORBIDDEN');
    if (upgrade) {
      const conn = (this.engine as unknown as { clients: Record<string, { upgraded?: boolean; upgrading?: boolean } | undefined> }).clients[sid];
      if (conn?.upgraded || conn?.upgrading) throw new TidingsError('TIDINGS_EIO_BAD_REQUEST', 'The Engine.IO session is already on a WebSocket');
    }
  }

  #bodyRefusal(req: IncomingMessage): Refusal | null {
    const length = Number(req.headers['content-length'] ?? 0);
    return length > this.#d.maxBodyBytes ? { error: new TidingsError('TIDINGS_BODY_TOO_LARGE', `Request body is larger than ${this.#d.maxBodyBytes} bytes`) } : null;
  }

  #refuse(res: ServerResponse, r: Refusal): void {
    this.#d.metrics.refused.inc({ code: r.error.code });
    refuseRequest(res, r.error, r.headers);
  }

  #refuseUpgrade(socket: Duplex, r: Refusal): void {
    this.#d.metrics.refused.inc({ code: r.error.code });
    refuseUpgrade(socket, r.error, r.headers);
  }

  #onEngineSocket(conn: EngineSocket): void {
    const slot = (conn.request as GatedRequest).tidings;
    if (!slot) return void conn.close();
    const a = slot.admission;
    const sid = (conn as unknown as { id: string }).id;
    this.#bySid.set(sid, a);
    this.#open.add(conn);
    // `tidings status` counts transports from the registry: an upgrade changes the entry's.
    conn.once('upgrade', () => {
      this.#d.registry.setTransport(a.user.key, a.connectionId, 'websocket').catch((e: unknown) => this.#d.log.warn({ err: String(e) }, 'could not record a Socket.IO upgrade in the registry'));
    });
    conn.once('close', () => {
      this.#open.delete(conn);
      this.#bySid.delete(sid);
      slot.release();
    });
  }

  /**
   * Resume, as Socket.IO middleware (it runs before the CONNECT is acknowledged): the connection
   * joins the hub and its feed reads the log (replay from `auth.offset`, or the head: "from now")
   * before the client sees `connect`, so nothing it publishes after is missed. A garbage offset is
   * a connect_error with `data: {code, message}`.
   */
  async #openFeed(socket: Socket): Promise<void> {
    const a = (socket.request as GatedRequest).tidings?.admission;
    if (!a) return; // #onSocket disconnects it
    const since = offsetFromAuth(socket.handshake.auth);
    const feed = this.#d.feeds.open({ user: a.user.key, path: a.path, connectionId: a.connectionId });
    const backlog = new EngineBacklog(socket.conn as unknown as EngineSocket);
    const writes = new EngineWriteHold(socket.conn as unknown as EngineSocket);
    const transport = (): TransportKind => (socket.conn.transport.name === 'websocket' ? 'websocket' : 'polling');
    let connected = false;
    let closedEarly: CloseReason | null = null;
    const conn: LocalConnection = {
      id: a.connectionId,
      user: a.user.key,
      sessionId: a.session.id,
      sessionExpiresAt: a.session.expiresAt,
      path: a.path,
      get transport() {
        return transport();
      },
      send: (event: PushEvent, json: string) => feed.push(event, json),
      hold: () => writes.hold(),
      release: () => writes.release(),
      close: (why: CloseReason) => {
        if (!connected) return void (closedEarly = why);
        if (why === CLOSE.sessionEnded) socket.emit('session:invalid');
        // A slow consumer would not read a close packet: discard the transport instead of waiting for it.
        if (why === CLOSE.slowConsumer) return void socket.conn.close(true);
        if ('reconnectAfterMs' in why) socket.emit('server:restart', { reconnectAfterMs: why.reconnectAfterMs });
        // Graceful on every transport: Engine.IO closes only once the client fetched what is buffered
        // (a polling client with its next poll); the stopping node bounds that wait by its grace time.
        socket.disconnect(true);
      },
    };
    const leave = () => {
      feed.close();
      this.#d.hub.remove(conn);
    };
    /** The backlog bound, checked before every emit of the feed (replay and live alike). */
    const tooSlow = backlogBound({ conn, queued: () => backlog.bytes(), limit: () => this.#d.maxQueuedBytes(), metrics: this.#d.metrics, log: this.#d.log });
    const emit = socketIoSink(socket);
    const sink: FeedSink = {
      event: (event, json) => void (tooSlow() || emit.event(event, json)),
      notRecovered: (reason, offset) => void (tooSlow() || emit.notRecovered(reason, offset)),
    };
    this.#d.hub.add(conn);
    // The client may go before its CONNECT is answered; the hub must not keep it then.
    socket.conn.once('close', leave);
    await feed.tryPrepare(since);
    if (closedEarly) {
      leave();
      throw new TidingsError(closedEarly === CLOSE.sessionEnded ? 'TIDINGS_SESSION_UNKNOWN' : 'TIDINGS_SHUTTING_DOWN');
    }
    (socket.data as { feed?: Feed }).feed = { feed, sink, leave, connected: () => void (connected = true) };
  }

  #onSocket(socket: Socket): void {
    const a = (socket.request as GatedRequest).tidings?.admission;
    const f = (socket.data as { feed?: Feed }).feed;
    if (!a || !f) {
      socket.disconnect(true);
      return;
    }
    const transport = (): TransportKind => (socket.conn.transport.name === 'websocket' ? 'websocket' : 'polling');
    f.connected();
    f.feed.attach(f.sink);
    const gauge = transport();
    this.#d.metrics.connections.inc({ transport: gauge });
    socket.conn.once('upgrade', () => {
      this.#d.metrics.connections.dec({ transport: 'polling' });
      this.#d.metrics.connections.inc({ transport: 'websocket' });
    });
    socket.once('disconnect', () => {
      f.leave();
      this.#d.metrics.connections.dec({ transport: transport() });
    });
    this.#d.log.debug({ user: a.user.key, connection: a.connectionId, transport: gauge }, 'socket.io connected');
  }
}
