import { randomBytes } from 'node:crypto';
import type { Session, SessionStore } from '../ports/session-store.js';
import type { DirUser } from '../directory/directory.js';

export const SECRET_COOKIE = 'tidings-secret';

/**
 * Sessions: created at login, carried by `?session=` plus the HttpOnly secret cookie, sliding lifetime.
 * The lifetime is read per call so a reload changes it for every later touch.
 */
export class SessionService {
  readonly #store: SessionStore;
  readonly #lifetimeMs: () => number;
  readonly #now: () => number;

  constructor(store: SessionStore, lifetimeMs: () => number, now: () => number = Date.now) {
    this.#store = store;
    this.#lifetimeMs = lifetimeMs;
    this.#now = now;
  }

  async create(user: DirUser, clientIp: string): Promise<Session> {
    const now = this.#now();
    const session: Session = {
      id: randomBytes(16).toString('hex'),
      secret: randomBytes(24).toString('base64url'),
      userId: user.id,
      contextId: user.contextId,
      login: user.login,
      clientIp,
      createdAt: now,
      expiresAt: now + this.#lifetimeMs(),
    };
    await this.#store.put(session);
    return session;
  }

  get(id: string): Promise<Session | null> {
    return this.#store.get(id);
  }

  /**
   * Slides the expiry forward; writes only once a tenth of the lifetime has passed since the last
   * slide, so busy sockets don't cost a store write per request. Returns the expiry now in force.
   */
  async touch(s: Session): Promise<number> {
    const lifetime = this.#lifetimeMs();
    const next = this.#now() + lifetime;
    if (next - s.expiresAt < lifetime / 10) return s.expiresAt;
    await this.#store.touch(s.id, next);
    return next;
  }

  end(id: string): Promise<Session | null> {
    return this.#store.delete(id);
  }
}

/** Reads one cookie from a Cookie header without a parser dependency; values are not URL-decoded (ours are base64url). */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}
