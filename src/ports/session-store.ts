import type { Lifecycle } from './lifecycle.js';

export interface Session {
  readonly id: string;
  /** Value of the HttpOnly secret cookie; a socket must present it alongside `?session=`. */
  readonly secret: string;
  readonly userId: number;
  readonly contextId: number;
  readonly login: string;
  /** Client IP at login, for the optional strict IP check. */
  readonly clientIp: string;
  readonly createdAt: number;
  /** Epoch ms; slides forward on use (see SessionService.touch). */
  readonly expiresAt: number;
}

/**
 * Where sessions live. Memory for one node; Redis so that a login on node A is
 * valid for a socket on node B. Implementations expire sessions on their own at `expiresAt`.
 */
export interface SessionStore extends Lifecycle {
  put(session: Session): Promise<void>;
  get(id: string): Promise<Session | null>;
  /** Moves the expiry; a no-op for a session that is gone. */
  touch(id: string, expiresAt: number): Promise<void>;
  /** Removes and returns the session, null when it was not there. */
  delete(id: string): Promise<Session | null>;
}
