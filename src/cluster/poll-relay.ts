import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { TidingsError } from '../errors.js';
import { markRelayed, type TrustedProxies } from '../http/client-ip.js';
import { asTidingsError, refuseRequest, refuseUpgrade } from '../http/refuse.js';
import type { Logger } from '../log.js';
import type { HandshakeGate } from '../sockets/handshake-gate.js';
import { queryOf, socketPath } from '../sockets/socket-path.js';
import { ownerOfSid } from '../sockets/engine-sid.js';
import type { MemberUrls } from './member-urls.js';
import { RELAY_HEADER, type RelayAuth } from './relay-auth.js';

export interface PollRelayOptions {
  readonly nodeId: string;
  readonly gate: HandshakeGate;
  /** The signing key in force (it follows reloads of tidings.cluster.secret and tidings.admin.token). */
  readonly auth: () => RelayAuth;
  readonly members: MemberUrls;
  readonly proxies: () => TrustedProxies;
  /** The longest an owner may hold a polling request (Socket.IO ping interval + timeout, plus slack). */
  readonly holdLimitMs: number;
  /** Called for each polling request sent on to its owner (tidings_relayed_polls_total). */
  readonly relayed: () => void;
  readonly log: Logger;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and our own, which never travel with a relayed request as they came. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', RELAY_HEADER]);

/**
 * Engine.IO sessions live in one node's memory. Behind a balancer without affinity a polling request
 * (or the WebSocket upgrade of a polling session) may land on any node: this relays it to the node
 * that owns the sid (its id is in the sid, see engine-sid.ts), so no balancer needs to be sticky.
 *
 * The relaying node runs the same handshake gate on the request first, so the relay cannot be used
 * to get past it; it then signs what it saw (its id, the client IP, whether the peer was a trusted
 * proxy) with the cluster key. The owner accepts only a valid signature, takes the client IP from
 * it, and runs its own checks as for a direct request, the sid's binding to its session included.
 *
 * `handleRequest`/`handleUpgrade` answer true when they took the request (relayed, or refused);
 * false means: serve it here.
 */
export class PollRelay {
  readonly #o: PollRelayOptions;
  // No cap on sockets per owner: every polling client may hold a request for a whole ping interval, and
  // a queue here would stall them all (their number is bounded by the connection caps). Idle ones are kept up to 256.
  readonly #http = new HttpAgent({ keepAlive: true, maxFreeSockets: 256 });
  readonly #https = new HttpsAgent({ keepAlive: true, maxFreeSockets: 256 });
  /** Client sockets of relayed WebSockets: the HTTP server no longer tracks an upgraded socket, so stop() ends them here. */
  readonly #tunnels = new Set<Duplex>();

  constructor(o: PollRelayOptions) {
    this.#o = o;
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    try {
      const target = await this.#route(req, false);
      if (!target) return false;
      this.#o.relayed();
      this.#relayRequest(req, res, target);
    } catch (e) {
      refuseRequest(res, asTidingsError(e));
    }
    return true;
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<boolean> {
    try {
      const target = await this.#route(req, true);
      if (!target) return false;
      this.#relayUpgrade(req, socket, head, target);
    } catch (e) {
      refuseUpgrade(socket, asTidingsError(e));
    }
    return true;
  }

  close(): void {
    for (const t of this.#tunnels) t.destroy();
    this.#http.destroy();
    this.#https.destroy();
  }

  /** The owner's URL when the request must be relayed; null to serve it here. Throws a refusal. */
  async #route(req: IncomingMessage, upgrade: boolean): Promise<URL | null> {
    // Origin-form only (`/socket.io/…`): an absolute-form URL must never pick the relay's target.
    if (!req.url?.startsWith('/')) return null;
    const query = queryOf(req.url);
    const sid = query.get('sid');
    const relayed = req.headers[RELAY_HEADER];
    if (relayed !== undefined) {
      // Relayed to us: only a valid signature from a node that ran the gate, and never onwards.
      const v = this.#o.auth().verify(String(relayed), req.method ?? 'GET', req.url ?? '/');
      if (!v.ok) {
        // Either nodes with different keys, or someone posing as a node: both an operator must see.
        this.#o.log.warn({ peer: req.socket.remoteAddress, why: v.why }, 'refused a relayed request without a valid signature');
        throw new TidingsError('TIDINGS_RELAY_FORBIDDEN', `Refused a relayed request: ${v.why}`);
      }
      if (!sid || ownerOfSid(sid) !== this.#o.nodeId) throw new TidingsError('TIDINGS_RELAY_FORBIDDEN', 'Refused a relayed request for an Engine.IO session this node does not own');
      markRelayed(req, v.claim);
      return null;
    }
    const owner = sid ? ownerOfSid(sid) : null;
    if (owner === null || owner === this.#o.nodeId) return null;
    // Every check the owner would make on a direct request, here first: the relay is no way around the gate.
    await this.#o.gate.verify({ req, query, path: socketPath(req.url), transport: upgrade ? 'websocket' : 'polling', isWebSocketUpgrade: upgrade });
    const base = await this.#o.members.urlOf(owner);
    // A session whose node left is as gone as one that ended: the client opens a new one.
    if (base === null) throw new TidingsError('TIDINGS_SID_UNKNOWN', `The Engine.IO session belongs to node '${owner}', which is not in the cluster (any more); reconnect`);
    if (!this.#o.auth().enabled) throw new TidingsError('TIDINGS_RELAY_FAILED', 'This Engine.IO session lives on another node, and requests cannot be relayed to it: set tidings.cluster.secret (or tidings.admin.token) on every node');
    return new URL(req.url ?? '/', base);
  }

  #headers(req: IncomingMessage, target: URL): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
    const proxies = this.#o.proxies();
    out[RELAY_HEADER] = this.#o.auth().sign({ from: this.#o.nodeId, clientIp: proxies.clientIp(req), peerTrusted: proxies.fromTrustedPeer(req) }, req.method ?? 'GET', `${target.pathname}${target.search}`);
    return out;
  }

  #relayRequest(req: IncomingMessage, res: ServerResponse, target: URL): void {
    const https = target.protocol === 'https:';
    const up = (https ? httpsRequest : httpRequest)(target, { method: req.method, headers: this.#headers(req, target), agent: https ? this.#https : this.#http, timeout: this.#o.holdLimitMs }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, responseHeaders(upRes.headers));
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    });
    up.on('timeout', () => up.destroy(new Error(`no answer within ${this.#o.holdLimitMs} ms`)));
    up.on('error', (err) => {
      this.#o.log.warn({ err: String(err), target: target.origin }, 'could not relay a polling request to its owner node');
      if (!res.headersSent) refuseRequest(res, new TidingsError('TIDINGS_RELAY_FAILED', 'The node that holds this Engine.IO session did not answer; reconnect'));
      else res.destroy();
    });
    // A client that gives up (or a proxy that cut it) ends the relayed request too, as it would a direct one.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  #relayUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: URL): void {
    const https = target.protocol === 'https:';
    const headers = this.#headers(req, target);
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade ?? 'websocket';
    const up = (https ? httpsRequest : httpRequest)(target, { method: 'GET', headers, agent: false, timeout: 10_000 });
    up.on('upgrade', (upRes, upSocket, upHead) => {
      up.setTimeout(0);
      upSocket.setTimeout(0);
      const lines = [`HTTP/1.1 101 ${upRes.statusMessage ?? 'Switching Protocols'}`];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
      if (upHead.length) socket.write(upHead);
      if (head.length) upSocket.write(head);
      upSocket.pipe(socket).pipe(upSocket);
      this.#tunnels.add(socket);
      const end = () => {
        this.#tunnels.delete(socket);
        socket.destroy();
        upSocket.destroy();
      };
      upSocket.on('error', end).on('close', end);
      socket.on('error', end).on('close', end);
    });
    // The owner refused (its gate, or an unknown sid): pass its answer on as it is.
    up.on('response', (upRes) => {
      const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage ?? ''}`];
      for (const [k, v] of Object.entries(responseHeaders(upRes.headers))) lines.push(`${k}: ${String(v)}`);
      lines.push('Connection: close');
      socket.write(lines.join('\r\n') + '\r\n\r\n');
      upRes.pipe(socket);
    });
    up.on('timeout', () => up.destroy(new Error('no upgrade answer within 10 s')));
    up.on('error', (err) => {
      this.#o.log.warn({ err: String(err), target: target.origin }, 'could not relay a WebSocket upgrade to its owner node');
      refuseUpgrade(socket, new TidingsError('TIDINGS_RELAY_FAILED', 'The node that holds this Engine.IO session did not answer; reconnect'));
    });
    socket.on('close', () => up.destroy());
    up.end();
  }
}

function responseHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return out;
}
