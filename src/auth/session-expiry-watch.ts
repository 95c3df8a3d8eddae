import type { Session } from '../ports/session-store.js';

export interface SessionExpiryWatchDeps {
  /** Reads a session from the store; null when it is gone (expired, ended, or lost by the store). */
  get(id: string): Promise<Session | null>;
  /** Closes this node's sockets of a session that has ended. */
  close(sessionId: string): void;
  now?: () => number;
  /** ms between re-reads of every watched session. Default 60 000. */
  sweepMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

/** Granularity of the expiry timer: a socket closes at most this long after its session expired. */
const TICK_MS = 250;
/** Wait before re-reading sessions the store could not answer for. */
const RETRY_MS = 1000;
/** Parallel store reads in one sweep step. */
const BATCH = 500;

/**
 * Closes this node's sockets of a session that ends without a logout: it expired, or the store
 * lost it. A socket does not extend its session; login and every new connection do (the gate
 * touches the session), so an expiry here may have been moved on by another node: a due session
 * is re-read before anything is closed. Each node watches its own sockets' sessions, so an expiry
 * needs no message between nodes. The sweep re-reads every watched session now and then, which
 * also catches a logout whose broadcast a node missed during a Redis blip.
 *
 * Due times sit in 250 ms buckets, so tracking and untracking are O(1) whatever the number of
 * sessions, and the timer runs only while there is something to watch.
 */
export class SessionExpiryWatch {
  readonly #get: SessionExpiryWatchDeps['get'];
  readonly #close: SessionExpiryWatchDeps['close'];
  readonly #now: () => number;
  readonly #sweepMs: number;
  readonly #log?: SessionExpiryWatchDeps['log'];
  /** sessionId → number of this node's sockets of it, and the expiry currently known. */
  readonly #watched = new Map<string, { sockets: number; expiresAt: number }>();
  /** bucket (expiresAt / TICK_MS, rounded up) → sessions due then. */
  readonly #buckets = new Map<number, Set<string>>();
  #nextBucket = 0;
  #tick: NodeJS.Timeout | null = null;
  #sweep: NodeJS.Timeout | null = null;
  #sweeping = false;
  #stopped = false;
  #failing = false;

  constructor(deps: SessionExpiryWatchDeps) {
    this.#get = deps.get;
    this.#close = deps.close;
    this.#now = deps.now ?? Date.now;
    this.#sweepMs = deps.sweepMs ?? 60_000;
    this.#log = deps.log;
  }

  /** One more socket of `sessionId` on this node; `expiresAt` as the gate saw it. */
  track(sessionId: string, expiresAt: number): void {
    if (this.#stopped) return;
    const w = this.#watched.get(sessionId);
    if (w) {
      w.sockets++;
      if (expiresAt > w.expiresAt) this.#due(sessionId, w, expiresAt);
      return;
    }
    const fresh = { sockets: 1, expiresAt: 0 };
    this.#watched.set(sessionId, fresh);
    this.#due(sessionId, fresh, expiresAt);
    this.#arm();
  }

  /** One socket of `sessionId` fewer on this node. */
  untrack(sessionId: string): void {
    const w = this.#watched.get(sessionId);
    if (!w || --w.sockets > 0) return;
    this.#forget(sessionId, w);
    if (this.#watched.size === 0) this.#disarm();
  }

  /** Number of sessions watched (for tests and metrics). */
  get size(): number {
    return this.#watched.size;
  }

  stop(): void {
    this.#stopped = true;
    this.#disarm();
    this.#watched.clear();
    this.#buckets.clear();
  }

  /** Re-reads every watched session now; closes the sockets of those that are gone. */
  async sweep(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      const ids = [...this.#watched.keys()];
      for (let i = 0; i < ids.length; i += BATCH) await this.#recheck(ids.slice(i, i + BATCH));
    } finally {
      this.#sweeping = false;
    }
  }

  #due(sessionId: string, w: { expiresAt: number }, expiresAt: number): void {
    this.#buckets.get(bucketOf(w.expiresAt))?.delete(sessionId);
    w.expiresAt = expiresAt;
    const b = bucketOf(expiresAt);
    let set = this.#buckets.get(b);
    if (!set) this.#buckets.set(b, (set = new Set()));
    set.add(sessionId);
    if (this.#tick && b < this.#nextBucket) this.#nextBucket = b;
  }

  #forget(sessionId: string, w: { expiresAt: number }): void {
    this.#watched.delete(sessionId);
    const b = bucketOf(w.expiresAt);
    const set = this.#buckets.get(b);
    set?.delete(sessionId);
    if (set?.size === 0) this.#buckets.delete(b);
  }

  #arm(): void {
    if (this.#tick || this.#stopped) return;
    // Called when the first session is tracked, so there is one bucket at most.
    this.#nextBucket = Math.min(...this.#buckets.keys(), Math.floor(this.#now() / TICK_MS));
    this.#tick = setInterval(() => this.#onTick(), TICK_MS);
    this.#tick.unref();
    this.#sweep = setInterval(() => void this.sweep().catch((err) => this.#log?.warn({ err: String(err) }, 'could not re-read sessions; will retry')), this.#sweepMs);
    this.#sweep.unref();
  }

  #disarm(): void {
    if (this.#tick) clearInterval(this.#tick);
    if (this.#sweep) clearInterval(this.#sweep);
    this.#tick = this.#sweep = null;
  }

  #onTick(): void {
    // Only whole buckets in the past: everything in them has expired by now.
    const now = Math.floor(this.#now() / TICK_MS);
    const due: string[] = [];
    for (let b = this.#nextBucket; b <= now; b++) {
      const set = this.#buckets.get(b);
      if (!set) continue;
      this.#buckets.delete(b);
      due.push(...set);
    }
    this.#nextBucket = now + 1;
    if (due.length === 0) return;
    void this.#recheck(due).then(
      () => {
        this.#failing = false;
      },
      (err) => {
        // The store is unreachable: try again in a second rather than close on a guess.
        if (!this.#failing) this.#log?.warn({ err: String(err), sessions: due.length }, 'could not re-read expiring sessions; will retry');
        this.#failing = true;
        for (const id of due) {
          const w = this.#watched.get(id);
          if (w) this.#due(id, w, this.#now() + RETRY_MS);
        }
      },
    );
  }

  async #recheck(ids: string[]): Promise<void> {
    const sessions = await Promise.all(ids.map((id) => this.#get(id)));
    const now = this.#now();
    ids.forEach((id, i) => {
      const w = this.#watched.get(id);
      if (!w) return;
      const s = sessions[i];
      if (s && s.expiresAt > now) {
        this.#due(id, w, s.expiresAt);
        return;
      }
      this.#forget(id, w);
      this.#close(id);
    });
    if (this.#watched.size === 0) this.#disarm();
  }
}

function bucketOf(ms: number): number {
  return Math.ceil(ms / TICK_MS);
}
