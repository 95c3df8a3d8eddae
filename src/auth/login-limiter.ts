import { isIPv6 } from 'node:net';

export interface LoginLimits {
  /** Failures allowed from one client IP (IPv6: one /64) across logins. */
  readonly perIp: number;
  /** Failures allowed for one login from one client IP. */
  readonly perIpLogin: number;
  /** Failures allowed for one login from anywhere; also the allowance of one trusted device. */
  readonly perLogin: number;
  readonly windowMs: number;
  /** Keys remembered at most; past it the least recently failed is forgotten. */
  readonly maxTracked: number;
}

/** Who is trying: a trusted device is one with a valid device cookie for this login. */
export interface LoginAttempt {
  readonly ip: string;
  readonly login: string;
  readonly device: string | null;
}

/**
 * Limits *failed* logins; a success is never counted and never refused for having been slow.
 *
 * An untrusted client is refused (before any password check) while its (IP, login) pair or the
 * login itself has used up its allowance: guessing one login's password is throttled. Its IP's
 * allowance (across logins) refuses only guesses that fail: the password is checked, a correct one
 * gets in (another user behind the same NAT as an attacker is not locked out), a wrong one is
 * answered 429 like a refused attempt, never 401. A trusted device is exempt from all three and
 * only its own failures count against it, so an attacker who knows a login cannot lock its
 * owner's browsers out, from whatever IP. Each allowance is a leaky bucket: `limit` failures at
 * once, then one more every `windowMs / limit` ms. Per node: a cluster of N nodes lets through N
 * times as many.
 */
export class LoginLimiter {
  /** key → failure level at `at`; in order of last failure, so the first is the one to forget. */
  readonly #levels = new Map<string, { level: number; at: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Seconds until this attempt may be checked, or 0 when it may be now (the IP's allowance aside). */
  retryAfter(a: LoginAttempt, l: LoginLimits): number {
    return this.#seconds(this.#keys(a, l).filter(([k]) => !k.startsWith('i:')), l);
  }

  /**
   * Seconds until a failed attempt from this IP is answered 401 again, or 0 when it is now; asked
   * only once the password turned out wrong, so it never stands in a correct login's way.
   */
  failureRetryAfter(a: LoginAttempt, l: LoginLimits): number {
    return this.#seconds(this.#keys(a, l).filter(([k]) => k.startsWith('i:')), l);
  }

  recordFailure(a: LoginAttempt, l: LoginLimits): void {
    const now = this.#now();
    for (const [k, limit] of this.#keys(a, l)) {
      const level = this.#level(k, limit, l.windowMs, now) + 1;
      this.#levels.delete(k);
      this.#levels.set(k, { level, at: now });
    }
    while (this.#levels.size > l.maxTracked) this.#levels.delete(this.#levels.keys().next().value as string);
  }

  /** A success forgets this pair's and this device's failures (not the IP's or the login's). */
  recordSuccess(a: LoginAttempt): void {
    this.#levels.delete(a.device !== null ? `d:${a.device}` : `il:${ipKey(a.ip)} ${a.login.toLowerCase()}`);
  }

  get tracked(): number {
    return this.#levels.size;
  }

  #keys(a: LoginAttempt, l: LoginLimits): [string, number][] {
    if (a.device !== null) return [[`d:${a.device}`, l.perLogin]];
    const ip = ipKey(a.ip);
    const login = a.login.toLowerCase();
    return [[`i:${ip}`, l.perIp], [`il:${ip} ${login}`, l.perIpLogin], [`l:${login}`, l.perLogin]];
  }

  #seconds(keys: [string, number][], l: LoginLimits): number {
    const waits = keys.map(([k, limit]) => this.#wait(k, limit, l.windowMs));
    return Math.ceil(Math.max(0, ...waits) / 1000);
  }

  #level(k: string, limit: number, windowMs: number, now: number): number {
    const e = this.#levels.get(k);
    if (!e) return 0;
    return Math.max(0, e.level - ((now - e.at) * limit) / windowMs);
  }

  /** ms until one more failure fits the allowance. */
  #wait(k: string, limit: number, windowMs: number): number {
    const over = this.#level(k, limit, windowMs, this.#now()) - (limit - 1);
    return over > 0 ? (over * windowMs) / limit : 0;
  }
}

/** IPv4 as is (also IPv4-mapped IPv6); IPv6 by its /64, which one subscriber usually holds whole. */
export function ipKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  if (!isIPv6(ip)) return ip;
  const [head, tail = ''] = ip.toLowerCase().split('::');
  const h = head === '' ? [] : head.split(':');
  const t = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
