import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TidingsError } from '../errors.js';
import { readCookie, SECRET_COOKIE, type SessionService } from '../auth/session-service.js';
import { sameSecret } from '../auth/constant-time.js';
import type { ConfigService } from '../config/config-service.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import type { Session } from '../ports/session-store.js';
import type { DirUser } from '../directory/directory.js';
import { userKey, type TransportKind } from '../domain/types.js';
import { searchOne } from '../http/validate.js';
import { trustedProxies } from '../http/client-ip.js';
import { checkOrigin } from '../http/origin-policy.js';

/** What a request that passed the gate is admitted as. */
export interface Admission {
  readonly session: Session;
  readonly user: DirUser;
  readonly connectionId: string;
  readonly path: string;
  readonly transport: TransportKind;
}

export interface GateRequest {
  readonly req: IncomingMessage;
  readonly query: URLSearchParams;
  readonly path: string;
  readonly transport: TransportKind;
  /** A WebSocket upgrade is refused when `com.openexchange.websockets.enabled` is false for the user. */
  readonly isWebSocketUpgrade: boolean;
}

/**
 * The one handshake gate (README, "Why a connection is refused") for every way in: Socket.IO
 * handshake, polling and upgrade, plain WebSocket upgrade, long-poll and SSE. It answers before
 * any upgrade, so a refusal is a plain HTTP status with a JSON body that says exactly why.
 */
export class HandshakeGate {
  readonly #sessions: SessionService;
  readonly #config: ConfigService;
  readonly #registry: ConnectionRegistry;
  readonly #nodeId: string;

  constructor(deps: { sessions: SessionService; config: ConfigService; registry: ConnectionRegistry; nodeId: string }) {
    this.#sessions = deps.sessions;
    this.#config = deps.config;
    this.#registry = deps.registry;
    this.#nodeId = deps.nodeId;
  }

  /** Checks everything but the connection cap and slides the session; used alone for requests that hold no connection. */
  async check(g: GateRequest): Promise<{ session: Session; user: DirUser }> {
    const { session, user } = await this.verify(g);
    const expiresAt = await this.#sessions.touch(session);
    return { session: { ...session, expiresAt }, user };
  }

  /**
   * Every check of the gate, without sliding the session: for the requests inside a connection
   * admitted before (Engine.IO polling and upgrade), which an open socket must not turn into a
   * session that never lapses.
   */
  async verify(g: GateRequest): Promise<{ session: Session; user: DirUser }> {
    const s = this.#config.settings;
    const proxies = trustedProxies(s['tidings.http.trustedProxies']);
    checkOrigin(g.req, { allowed: s['tidings.http.allowedOrigins'], publicUrls: s['tidings.http.publicUrl'], proxies });
    const sessionId = searchOne(g.query, 'session');
    if (!sessionId) throw new TidingsError('TIDINGS_SESSION_MISSING');
    const session = await this.#sessions.get(sessionId);
    if (!session) throw new TidingsError('TIDINGS_SESSION_UNKNOWN');
    const secret = readCookie(g.req.headers.cookie, SECRET_COOKIE);
    if (secret === null) throw new TidingsError('TIDINGS_SECRET_MISSING');
    if (!sameSecret(secret, session.secret)) throw new TidingsError('TIDINGS_SECRET_WRONG');
    const user = this.#config.directory.users.get(userKey(session));
    if (!user) {
      await this.#sessions.end(session.id);
      throw new TidingsError('TIDINGS_SESSION_UNKNOWN', 'The session\'s user no longer exists');
    }
    if (!user.mailEnabled) throw new TidingsError('TIDINGS_USER_DISABLED');
    const ref = { userId: user.id, contextId: user.contextId };
    if (this.#config.resolve('tidings.session.ipCheck', ref).value === true && proxies.clientIp(g.req) !== session.clientIp) {
      throw new TidingsError('TIDINGS_IP_MISMATCH');
    }
    if (g.isWebSocketUpgrade && this.#config.resolve('com.openexchange.websockets.enabled', ref).value !== true) {
      throw new TidingsError('TIDINGS_WEBSOCKETS_DISABLED');
    }
    return { session, user };
  }

  /** The full gate: checks, then admits the connection cluster-wide (cap and duplicate id, atomically). */
  async admit(g: GateRequest): Promise<Admission> {
    const { session, user } = await this.check(g);
    const requested = searchOne(g.query, 'connection');
    if (requested !== null && !/^[\x21-\x7e]{1,128}$/.test(requested)) throw new TidingsError('TIDINGS_BAD_REQUEST', "Parameter 'connection' must be 1-128 printable ASCII characters");
    const connectionId = requested ?? randomUUID().replace(/-/g, '');
    const cap = this.#config.resolve('tidings.connections.maxPerUser', { userId: user.id, contextId: user.contextId }).value as number;
    const r = await this.#registry.admit(user.key, { connectionId, nodeId: this.#nodeId, sessionId: session.id, transport: g.transport, path: g.path }, cap);
    if (!r.ok) {
      if (r.reason === 'duplicate') throw new TidingsError('TIDINGS_DUPLICATE_CONNECTION', `A connection '${connectionId}' already exists for this user`);
      throw new TidingsError('TIDINGS_TOO_MANY_CONNECTIONS', `This user already has ${r.count} connections (limit ${cap})`);
    }
    return { session, user, connectionId, path: g.path, transport: g.transport };
  }
}
