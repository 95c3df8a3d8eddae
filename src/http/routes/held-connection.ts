import type { FastifyRequest } from 'fastify';
import { backendUnavailable, TidingsError } from '../../errors.js';
import type { Feeds } from '../../history/feeds.js';
import type { Offset } from '../../history/offset.js';
import type { ResumeFeed } from '../../history/resume-feed.js';
import type { CloseReason, LocalConnection } from '../../delivery/local-connection.js';
import type { LocalHub } from '../../delivery/local-hub.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { ConnectionRegistry } from '../../ports/connection-registry.js';
import type { Admission, HandshakeGate } from '../../sockets/handshake-gate.js';
import { queryOf } from '../../sockets/socket-path.js';

export interface HeldDeps {
  readonly gate: HandshakeGate;
  readonly hub: LocalHub;
  readonly registry: ConnectionRegistry;
  readonly feeds: Feeds;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** A long-poll or SSE request while it is open: a connection like a socket's, with its feed. */
export interface HeldConnection {
  readonly admission: Admission;
  readonly feed: ResumeFeed;
  /** Told when the node closes the connection (session ended, shutting down). */
  onClose(fn: (why: CloseReason) => void): void;
  /** Leaves the hub and frees the registry slot; resolves when the registry has it. Idempotent. */
  release(): Promise<void>;
}

const PATH = /^\/(?:[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*)?$/;

/** The connection's path for path filters: `path=` when given, else the route's own path. */
export function pathParam(query: URLSearchParams, routePath: string): string {
  const p = query.get('path');
  if (p === null || p === '') return routePath;
  if (p.length > 256 || !PATH.test(p)) {
    throw new TidingsError('TIDINGS_BAD_REQUEST', "Parameter 'path' must be a path like /socket.io/appsuite: '/' then segments of A-Z a-z 0-9 _ . - separated by single '/', no trailing '/', at most 256 characters");
  }
  return p;
}

/**
 * Admits the request through the handshake gate (session, secret cookie, Origin, per-user cap;
 * not the WebSockets switch), registers it in the hub and the cluster registry so that remote
 * batches reach it, and reads the log from `since` while live events are held.
 * Throws the gate's refusal, or 503 when the log cannot be read (the request is then released).
 */
export async function openHeld(d: HeldDeps, req: FastifyRequest, transport: 'longpoll' | 'sse', routePath: string, since: Offset | null): Promise<HeldConnection> {
  const query = queryOf(req.raw.url);
  const path = pathParam(query, routePath);
  let admission: Admission;
  try {
    admission = await d.gate.admit({ req: req.raw, query, path, transport, isWebSocketUpgrade: false });
  } catch (e) {
    if (e instanceof TidingsError) d.metrics.refused.inc({ code: e.code });
    throw e;
  }
  const feed = d.feeds.open({ user: admission.user.key, path, connectionId: admission.connectionId });
  const closers: ((why: CloseReason) => void)[] = [];
  const conn: LocalConnection = {
    id: admission.connectionId,
    user: admission.user.key,
    sessionId: admission.session.id,
    sessionExpiresAt: admission.session.expiresAt,
    path,
    transport,
    send: (event, json) => feed.push(event, json),
    // An HTTP answer or stream: nothing to batch at the socket (a poll answers with what is pending).
    hold: () => undefined,
    release: () => undefined,
    close: (why) => {
      for (const fn of closers) fn(why);
    },
  };
  d.hub.add(conn);
  d.metrics.connections.inc({ transport });
  let released: Promise<void> | null = null;
  const release = (): Promise<void> => {
    released ??= (async () => {
      feed.close();
      d.hub.remove(conn);
      d.metrics.connections.dec({ transport });
      await d.registry.remove(admission.user.key, admission.connectionId).catch((e) => d.log.warn({ err: String(e) }, 'could not remove a connection from the registry'));
    })();
    return released;
  };
  try {
    await feed.prepare(since);
  } catch (e) {
    d.log.warn({ user: admission.user.key, err: String(e) }, `could not read the event log for a ${transport} request`);
    await release();
    throw backendUnavailable();
  }
  return { admission, feed, onClose: (fn) => void closers.push(fn), release };
}
