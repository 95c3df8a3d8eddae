import type { IncomingMessage } from 'node:http';
import { TidingsError } from '../errors.js';
import type { TrustedProxies } from './client-ip.js';

export interface OriginPolicyOptions {
  /** `tidings.http.allowedOrigins`: other sites allowed to open sockets; `*` allows any. */
  readonly allowed: readonly string[];
  /** `tidings.http.publicUrl`: this service's own origins as browsers see them (behind a proxy). */
  readonly publicUrls: readonly string[];
  /** Whose X-Forwarded-Host may be believed. */
  readonly proxies: TrustedProxies;
}

/**
 * The Origin check of the handshake gate. A browser always sends Origin on a WebSocket and on a
 * cross-origin request; a request without one comes from a non-browser client and passes.
 *
 * The server's own origin is what the browser addressed: the Host header (when the proxy passes
 * it on), a trusted proxy's X-Forwarded-Host (Apache sends it even without ProxyPreserveHost),
 * or a configured public URL. A refusal names everything it compared with, so an operator whose
 * proxy rewrites Host can see why at once.
 */
export function checkOrigin(req: IncomingMessage, o: OriginPolicyOptions): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const own = ownOrigins(req, o);
  if (own.includes(origin.toLowerCase())) return;
  if (o.allowed.includes(origin) || o.allowed.includes('*')) return;
  const ownText = own.length ? own.join(', ') : 'none (no Host header)';
  const allowedText = o.allowed.length ? o.allowed.join(', ') : 'empty';
  throw new TidingsError('TIDINGS_ORIGIN_FORBIDDEN', `Origin '${origin}' is not allowed: the server's own origins are ${ownText} (from the Host header${o.proxies.fromTrustedPeer(req) ? ', X-Forwarded-Host' : ''} and tidings.http.publicUrl), and tidings.http.allowedOrigins is ${allowedText}. Behind a proxy, pass the Host header on or set tidings.http.publicUrl`);
}

function ownOrigins(req: IncomingMessage, o: OriginPolicyOptions): string[] {
  const hosts: string[] = [];
  if (req.headers.host) hosts.push(req.headers.host);
  if (o.proxies.fromTrustedPeer(req)) {
    const fwd = req.headers['x-forwarded-host'];
    for (const h of (Array.isArray(fwd) ? fwd.join(',') : fwd ?? '').split(',')) if (h.trim()) hosts.push(h.trim());
  }
  const out = new Set<string>();
  // Either scheme: TLS usually ends at the proxy, so the Host alone does not tell which one the browser used.
  for (const h of hosts) for (const scheme of ['http', 'https']) out.add(`${scheme}://${h.toLowerCase()}`);
  for (const u of o.publicUrls) out.add(new URL(u).origin);
  return [...out];
}

/** Why `value` is not a public origin (`https://mail.example.com[:port]`), or null. Used by the config schema. */
export function publicUrlProblem(value: string): string | null {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return `'${value}' is not a URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `'${value}' must start with http:// or https://`;
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username) return `'${value}' must be an origin only (scheme, host, port), without path or query`;
  return null;
}
