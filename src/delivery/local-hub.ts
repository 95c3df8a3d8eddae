import type { PushEvent, UserKey } from '../domain/types.js';
import type { CloseReason, LocalConnection } from './local-connection.js';
import { matchesPath } from './path-filter.js';

const noRelease = (): void => undefined;

/** Told of every connection that joins or leaves the hub (the session expiry watch), and of a send that threw. */
export interface HubObserver {
  added(c: LocalConnection): void;
  removed(c: LocalConnection): void;
  sendFailed(c: LocalConnection, err: unknown): void;
}

/** The connections this node holds, by user. Pure bookkeeping and fan-out; no I/O of its own. */
export class LocalHub {
  readonly #byUser = new Map<UserKey, Map<string, LocalConnection>>();
  /** A logout reaches every node; finding its sockets must not scan every connection. */
  readonly #bySession = new Map<string, Set<LocalConnection>>();
  readonly #observer?: HubObserver;
  #count = 0;

  constructor(observer?: HubObserver) {
    this.#observer = observer;
  }

  add(c: LocalConnection): void {
    let conns = this.#byUser.get(c.user);
    if (!conns) this.#byUser.set(c.user, (conns = new Map()));
    const replaced = conns.get(c.id);
    if (replaced) {
      this.#unindex(replaced);
      this.#observer?.removed(replaced);
    } else this.#count++;
    conns.set(c.id, c);
    let same = this.#bySession.get(c.sessionId);
    if (!same) this.#bySession.set(c.sessionId, (same = new Set()));
    same.add(c);
    this.#observer?.added(c);
  }

  /** Removes `c` only if it is still the registered connection under its id. */
  remove(c: LocalConnection): boolean {
    const conns = this.#byUser.get(c.user);
    if (!conns || conns.get(c.id) !== c) return false;
    conns.delete(c.id);
    this.#count--;
    if (conns.size === 0) this.#byUser.delete(c.user);
    this.#unindex(c);
    this.#observer?.removed(c);
    return true;
  }

  #unindex(c: LocalConnection): void {
    const same = this.#bySession.get(c.sessionId);
    if (same?.delete(c) && same.size === 0) this.#bySession.delete(c.sessionId);
  }

  has(user: UserKey): boolean {
    return this.#byUser.has(user);
  }

  get size(): number {
    return this.#count;
  }

  /** Sends to every matching connection of `user` except the one whose id is `sourceToken`; returns how many got it. */
  deliver(user: UserKey, event: PushEvent, json: string, pathFilter: string | null, sourceToken: string | null): number {
    const conns = this.#byUser.get(user);
    if (!conns) return 0;
    let n = 0;
    for (const c of conns.values()) {
      if (sourceToken !== null && c.id === sourceToken) continue;
      if (!matchesPath(pathFilter, c.path)) continue;
      // One connection whose send throws costs neither the user's other connections nor, on the
      // publishing node, the remote delivery that follows.
      try {
        c.send(event, json);
        n++;
      } catch (err) {
        this.#observer?.sendFailed(c, err);
      }
    }
    return n;
  }

  /**
   * Holds the writes of every connection `user` has now, until the returned function is called:
   * the events of one remote batch then leave each socket in one write instead of one each.
   */
  hold(user: UserKey): () => void {
    const conns = this.#byUser.get(user);
    if (!conns) return noRelease;
    const held = [...conns.values()];
    for (const c of held) c.hold();
    return () => {
      for (const c of held) c.release();
    };
  }

  closeSession(sessionId: string, why: CloseReason): number {
    const same = this.#bySession.get(sessionId);
    if (!same) return 0;
    const victims = [...same];
    for (const c of victims) c.close(why);
    return victims.length;
  }

  closeAll(why: CloseReason): void {
    for (const conns of [...this.#byUser.values()]) for (const c of [...conns.values()]) c.close(why);
  }

  *all(): Iterable<LocalConnection> {
    for (const conns of this.#byUser.values()) yield* conns.values();
  }
}
