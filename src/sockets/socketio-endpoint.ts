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

type GatedRequest = IncomingMessage & { tidings?: Admission };
type EngineConn = { request: GatedRequest; once(ev: 'close', fn: () => void): void };

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
  /** Engine.IO sessions not yet closed (a disconnected polling one waits for its last poll). */
  readonly #open = new Set<EngineConn>();

  constructor(deps: { gate: HandshakeGate; hub: LocalHub; registry: ConnectionRegistry; log: Logger; metrics: Metrics; pingIntervalMs: number; pingTimeoutMs: number; maxBodyBytes: number }) {
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
    this.engine.on('connection', (conn: EngineConn) => {
      this.#open.add(conn);
      conn.once('close', () => this.#open.delete(conn));
      const a = conn.request.tidings;
      if (a) conn.once('close', () => void this.#release(a));
    });
    this.engine.on('connection_error', (err: { req: GatedRequest }) => {
      const a = err.req?.tidings;
      if (a) void this.#release(a);
    });
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

  #onSocket(socket: Socket): void {
    const a = (socket.request as GatedRequest).tidings;
    if (!a) {
      socket.disconnect(true);
      return;
    }
    const transport = () => (socket.conn.transport.name === 'websocket' ? 'websocket' : 'polling');
    const conn: LocalConnection = {
      id: a.connectionId,
      user: a.user.key,
      sessionId: a.session.id,
      sessionExpiresAt: a.session.expiresAt,
      path: a.path,
      transport: a.transport,
      send: (event: PushEvent) => void socket.emit(event.name, ...event.args),
      close: (why: CloseReason) => {
        if (why === CLOSE.sessionEnded) socket.emit('session:invalid');
        if ('reconnectAfterMs' in why) socket.emit('server:restart', { reconnectAfterMs: why.reconnectAfterMs });
        // Graceful on every transport: Engine.IO closes only once the client fetched what is buffered
        // (a polling client with its next poll); the stopping node bounds that wait by its grace time.
        socket.disconnect(true);
      },
    };
    this.#hub.add(conn);
    const gauge = transport();
    this.#metrics.connections.inc({ transport: gauge });
    socket.conn.once('upgrade', () => {
      this.#metrics.connections.dec({ transport: 'polling' });
      this.#metrics.connections.inc({ transport: 'websocket' });
    });
    socket.once('disconnect', () => {
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
