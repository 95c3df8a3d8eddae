import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/**
 * The client's IP address, for `tidings.session.ipCheck`, the login limits and the logs.
 *
 * `X-Forwarded-For` is believed only as far as it was written by proxies listed in
 * `tidings.http.trustedProxies`: starting from the TCP peer, walk the list from the right and
 * stop at the first address that is not a trusted proxy (nginx `real_ip_recursive on`, Express
 * `trust proxy`). Everything left of that address was written by the client and may be forged.
 * With no trusted proxies the peer address is the client IP, whatever the headers say.
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly empty: boolean;

  /** `entries` are IPv4/IPv6 addresses and CIDRs, checked by `proxyEntryProblem` at config load. */
  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bits] = parseEntry(e);
      const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === null) this.#list.addAddress(addr, family);
      else this.#list.addSubnet(addr, bits, family);
    }
    this.empty = entries.length === 0;
  }

  trusts(ip: string): boolean {
    const family = isIP(ip);
    if (this.empty || family === 0) return false;
    return this.#list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  }

  /** The client IP of `req` (see the class comment); for a request relayed by another node, what that node saw. */
  clientIp(req: IncomingMessage): string {
    const relayed = (req as Relayable)[RELAYED];
    if (relayed) return relayed.clientIp;
    return this.resolve(req.socket.remoteAddress ?? '', forwardedFor(req));
  }

  /** Whether the request came straight from a trusted proxy, so its X-Forwarded-Host may be believed. */
  fromTrustedPeer(req: IncomingMessage): boolean {
    const relayed = (req as Relayable)[RELAYED];
    if (relayed) return relayed.peerTrusted;
    return this.trusts(normalizeIp(req.socket.remoteAddress ?? ''));
  }

  /** `peer` is the TCP peer address, `forwarded` the X-Forwarded-For entries, leftmost first (`[v6]:port` and `v4:port` are reduced to the address). */
  resolve(peer: string, forwarded: readonly string[]): string {
    let ip = normalizeIp(peer);
    for (let i = forwarded.length - 1; i >= 0 && this.trusts(ip); i--) {
      const next = normalizeIp(stripPort(forwarded[i].trim()));
      // A garbled entry ends the walk: the proxy that should have written it is the last trusted one.
      if (isIP(next) === 0) break;
      ip = next;
    }
    return ip;
  }
}

const RELAYED = Symbol('tidings.relayed');
type Relayable = IncomingMessage & { [RELAYED]?: { readonly clientIp: string; readonly peerTrusted: boolean } };

/**
 * For a request another node relayed (its signature verified, see src/cluster/relay-auth.ts): the
 * client IP and peer trust that node computed stand in for this request's own TCP peer.
 */
export function markRelayed(req: IncomingMessage, seen: { clientIp: string; peerTrusted: boolean }): void {
  (req as Relayable)[RELAYED] = { clientIp: seen.clientIp, peerTrusted: seen.peerTrusted };
}

const cache = new WeakMap<readonly string[], TrustedProxies>();

/** One parsed list per configuration in force (settings are frozen; a reload brings a new array). */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  let t = cache.get(entries);
  if (!t) {
    t = new TrustedProxies(entries);
    cache.set(entries, t);
  }
  return t;
}

/** Why `entry` is not an IP address or CIDR, or null when it is one. Used by the config schema. */
export function proxyEntryProblem(entry: string): string | null {
  const [addr, bits] = parseEntry(entry);
  const family = isIP(addr);
  if (family === 0) return `'${entry}' is not an IPv4/IPv6 address or CIDR`;
  if (bits !== null && (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128))) return `'${entry}' has a prefix length outside 0-${family === 4 ? 32 : 128}`;
  return null;
}

function parseEntry(entry: string): [string, number | null] {
  const slash = entry.indexOf('/');
  if (slash < 0) return [entry, null];
  const bits = entry.slice(slash + 1);
  return [entry.slice(0, slash), /^\d{1,3}$/.test(bits) ? Number(bits) : NaN];
}

/** Every X-Forwarded-For entry in order, over repeated headers (Node joins them with commas, but an array is possible). */
function forwardedFor(req: IncomingMessage): string[] {
  const raw = req.headers['x-forwarded-for'];
  if (raw === undefined) return [];
  const text = Array.isArray(raw) ? raw.join(',') : raw;
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function stripPort(s: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (v6) return v6[1];
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(s);
  return v4 ? v4[1] : s;
}

/** IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack listener reports) compares as the IPv4 address. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return m ? m[1] : ip.toLowerCase();
}
