import type { Session, SessionStore } from '../../ports/session-store.js';

/** Sessions in a map: this node's own, or one shared by the nodes of an in-process cluster. */
export class MemorySessionStore implements SessionStore {
  readonly #sessions: Map<string, Session>;
  readonly #now: () => number;

  constructor(now: () => number = Date.now, sessions = new Map<string, Session>()) {
    this.#now = now;
    this.#sessions = sessions;
  }

  async start(): Promise<void> {}
  /** The sessions stay with the map (other in-process nodes may share it). */
  async stop(): Promise<void> {}

  async put(session: Session): Promise<void> {
    this.#sessions.set(session.id, session);
  }

  async get(id: string): Promise<Session | null> {
    const s = this.#sessions.get(id);
    if (!s) return null;
    // Expired entries are dropped on read; nothing else needs them, so no sweeper timer.
    if (s.expiresAt <= this.#now()) {
      this.#sessions.delete(id);
      return null;
    }
    return s;
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    const s = await this.get(id);
    if (s) this.#sessions.set(id, { ...s, expiresAt });
  }

  async delete(id: string): Promise<Session | null> {
    const s = await this.get(id);
    this.#sessions.delete(id);
    return s;
  }
}
