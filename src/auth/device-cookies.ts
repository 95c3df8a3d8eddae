import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readCookie } from './session-service.js';

const PREFIX = 'tidings-device-';

export interface IssuedCookie {
  readonly name: string;
  readonly value: string;
}

/**
 * OWASP's device cookies: a browser that logged in as a login gets a cookie, signed for that login,
 * that exempts it from that login's lockout (only its own failures count against it). One cookie per
 * login, under a name derived from the login with the key (a cookie jar does not list logins).
 *
 * The value is `<device id>.<expiry, base36 ms>.<HMAC-SHA256 of login, id and expiry>`; the key comes
 * from `tidings.login.deviceKey` (the same on every node), or is random per process when that is empty.
 */
export class DeviceCookies {
  readonly #key: () => string;
  readonly #fallback = randomBytes(32).toString('base64url');
  readonly #now: () => number;

  constructor(key: () => string, now: () => number = Date.now) {
    this.#key = key;
    this.#now = now;
  }

  nameFor(login: string): string {
    return PREFIX + this.#mac(`name\n${login.toLowerCase()}`).subarray(0, 9).toString('base64url');
  }

  issue(login: string, maxAgeSeconds: number): IssuedCookie {
    const id = randomBytes(12).toString('base64url');
    const exp = (this.#now() + maxAgeSeconds * 1000).toString(36);
    return { name: this.nameFor(login), value: `${id}.${exp}.${this.#sign(login, id, exp).toString('base64url')}` };
  }

  /** The device id when the request carries a valid, unexpired device cookie for `login`; else null. */
  deviceOf(login: string, cookieHeader: string | undefined): string | null {
    const value = readCookie(cookieHeader, this.nameFor(login));
    if (value === null) return null;
    const m = /^([A-Za-z0-9_-]{16})\.([0-9a-z]{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!m) return null;
    const [, id, exp, sig] = m;
    const want = this.#sign(login, id, exp);
    const got = Buffer.from(sig, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
    return parseInt(exp, 36) > this.#now() ? id : null;
  }

  #sign(login: string, id: string, exp: string): Buffer {
    return this.#mac(`device\n${login.toLowerCase()}\n${id}\n${exp}`);
  }

  #mac(text: string): Buffer {
    return createHmac('sha256', this.#key() || this.#fallback).update(text).digest();
  }
}
