import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header a node sets on a request it relays to another node, and that outsiders cannot forge. */
export const RELAY_HEADER = 'x-tidings-relay';

/** What the relaying node vouches for: it ran the gate on the client's request and saw this client. */
export interface RelayClaim {
  /** The relaying node's id. */
  readonly from: string;
  /** The client IP the relaying node computed (trusted proxies applied). */
  readonly clientIp: string;
  /** Whether the client's TCP peer at the relaying node was a trusted proxy (for X-Forwarded-Host). */
  readonly peerTrusted: boolean;
}

/** A relayed request is accepted this long after it was signed (clock skew between nodes included). */
const MAX_AGE_MS = 30_000;

/**
 * HMAC-SHA256 over the claim, the method and the URL, with a key every node shares
 * (`tidings.cluster.secret`, else derived from `tidings.admin.token`). Without the key nobody can
 * make a node believe a client IP or skip the gate at the node that relayed.
 */
export class RelayAuth {
  readonly #key: Buffer | null;

  constructor(clusterSecret: string, adminToken: string) {
    if (clusterSecret) this.#key = createHmac('sha256', 'tidings cluster relay').update(clusterSecret).digest();
    else if (adminToken) this.#key = createHmac('sha256', 'tidings relay from admin token').update(adminToken).digest();
    else this.#key = null;
  }

  get enabled(): boolean {
    return this.#key !== null;
  }

  sign(claim: RelayClaim, method: string, url: string, now = Date.now()): string {
    const fields = [b64(claim.from), String(now), b64(claim.clientIp), claim.peerTrusted ? '1' : '0'];
    return `${fields.join('.')}.${this.#mac(fields, method, url)}`;
  }

  /** The claim of a valid header for this method and URL, or why it is not valid. */
  verify(header: string, method: string, url: string, now = Date.now()): { ok: true; claim: RelayClaim } | { ok: false; why: string } {
    if (!this.#key) return { ok: false, why: 'this node has no cluster secret (tidings.cluster.secret or tidings.admin.token)' };
    const parts = header.split('.');
    if (parts.length !== 5) return { ok: false, why: 'malformed relay header' };
    const [from, ts, ip, trusted, mac] = parts;
    const expected = Buffer.from(this.#mac([from, ts, ip, trusted], method, url), 'base64url');
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, why: 'wrong relay signature' };
    if (Math.abs(now - Number(ts)) > MAX_AGE_MS) return { ok: false, why: 'relay signature too old' };
    return { ok: true, claim: { from: unb64(from), clientIp: unb64(ip), peerTrusted: trusted === '1' } };
  }

  #mac(fields: string[], method: string, url: string): string {
    if (!this.#key) throw new Error('no cluster secret');
    return createHmac('sha256', this.#key).update(`${fields.join('.')}\n${method}\n${url}`).digest('base64url');
  }
}

let last: { secret: string; token: string; auth: RelayAuth } | null = null;

/** The RelayAuth for the keys in force; both are reloadable, so a reload that changes one brings a new one. */
export function relayAuthFor(clusterSecret: string, adminToken: string): RelayAuth {
  if (!last || last.secret !== clusterSecret || last.token !== adminToken) last = { secret: clusterSecret, token: adminToken, auth: new RelayAuth(clusterSecret, adminToken) };
  return last.auth;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url').toString('utf8');
