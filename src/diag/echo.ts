import type { IncomingMessage } from 'node:http';

/** What arrived at tidings, as the self-test reports it back: who the client is, and through what. */
export interface DiagEcho {
  readonly nodeId: string;
  /** The client IP as tidings uses it (sessions, IP check, login limits). */
  readonly clientIp: string;
  /** The TCP peer: the proxy's address when there is one. */
  readonly peer: string;
  /** Whether tidings takes the client IP from X-Forwarded-For when this peer sends it. */
  readonly peerTrusted: boolean;
  readonly host: string | null;
  readonly headers: Readonly<Record<string, string | null>>;
}

const SHOWN = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip', 'via', 'connection', 'upgrade'];

export function diagEcho(req: IncomingMessage, nodeId: string, clientIp: string, peerTrusted: boolean): DiagEcho {
  const headers: Record<string, string | null> = {};
  for (const h of SHOWN) {
    const v = req.headers[h];
    headers[h] = v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
  }
  return { nodeId, clientIp, peer: req.socket.remoteAddress ?? '', peerTrusted, host: req.headers.host ?? null, headers };
}

/** Bounds of the self-test: it must never become a way to hold a node's resources. */
export const DIAG_MAX_RUNNING = 16;
export const DIAG_MAX_IDLE_SECONDS = 300;
export const DIAG_MAX_GAP_MS = 10_000;
