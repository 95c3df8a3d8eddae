import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { TidingsError } from '../errors.js';
import { refuseRequest, refuseUpgrade } from './refuse.js';

export type RawHandler = (req: IncomingMessage, res: ServerResponse) => void;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface DispatchTargets {
  /** fastify: every request that is not for a socket endpoint. */
  readonly http: RawHandler;
  /**
   * Asked first for every `/socket.io/…` request and upgrade: true when it relayed it to the node
   * that owns its Engine.IO session (`src/cluster/poll-relay.ts`), false when this node serves it.
   */
  readonly relay: { handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean>; handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<boolean> };
  /** Socket.IO at `/socket.io/…`: its polling requests and its upgrades. */
  readonly socketIo: { handleRequest: RawHandler; handleUpgrade: UpgradeHandler };
  /** Plain WebSockets at `/websockets/…`. */
  readonly plainWs: { handleUpgrade: UpgradeHandler };
  /** The self-test WebSocket of `tidings diag` (under `/websockets/`, so it is asked first). */
  readonly diagWs: { matches(url: string): boolean; handleUpgrade: UpgradeHandler };
  /** True once the node stops: no new upgrade is accepted. */
  stopping(): boolean;
}

/** Which socket endpoint a request path belongs to; the one place that spells their prefixes. */
export function endpointOf(url: string | undefined): 'socket.io' | 'websockets' | null {
  const path = (url ?? '/').split('?')[0];
  if (path === '/socket.io' || path.startsWith('/socket.io/')) return 'socket.io';
  if (path === '/websockets' || path.startsWith('/websockets/')) return 'websockets';
  return null;
}

/** RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (node is told not to check, so that the answer is ours). */
export function missingHost(req: IncomingMessage): TidingsError | null {
  return req.headers.host === undefined && req.httpVersion === '1.1' ? new TidingsError('TIDINGS_BAD_REQUEST', 'An HTTP/1.1 request needs a Host header') : null;
}

/**
 * Owns the HTTP server's `request` and `upgrade` events: no library attaches its own listener,
 * so none can take the other's upgrades away, and every refusal is ours. Socket.IO gets its
 * requests and upgrades, `/websockets/…` its upgrades, fastify every other request; any other
 * upgrade is a 404.
 */
export function dispatch(server: Server, t: DispatchTargets): void {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (endpointOf(req.url) !== 'socket.io') return t.http(req, res);
    // fastify refuses a request without Host in its onRequest hook; Engine.IO would not.
    const noHost = missingHost(req);
    if (noHost) return refuseRequest(res, noHost);
    void t.relay.handleRequest(req, res).then((relayed) => relayed || t.socketIo.handleRequest(req, res));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (t.stopping()) return refuseUpgrade(socket, new TidingsError('TIDINGS_SHUTTING_DOWN'));
    const noHost = missingHost(req);
    if (noHost) return refuseUpgrade(socket, noHost);
    const endpoint = endpointOf(req.url);
    if (endpoint === 'socket.io') return void t.relay.handleUpgrade(req, socket, head).then((relayed) => relayed || t.socketIo.handleUpgrade(req, socket, head));
    if (endpoint === 'websockets') return t.diagWs.matches(req.url ?? '/') ? t.diagWs.handleUpgrade(req, socket, head) : t.plainWs.handleUpgrade(req, socket, head);
    refuseUpgrade(socket, new TidingsError('TIDINGS_NOT_FOUND', `No WebSocket endpoint at ${(req.url ?? '/').split('?')[0]}`));
  });
}
