import type { PushEvent, UserKey } from '../domain/types.js';
import { matchesPath } from '../delivery/path-filter.js';
import { withId } from '../delivery/wire.js';
import type { Logger } from '../log.js';
import type { EventLog, HistoryLimits, LogEntry, LogRead, NotRecoveredReason } from '../ports/event-log.js';
import { formatOffset, isUnlogged, parseOffset, type Offset } from './offset.js';

/** Where a feed writes, whatever the transport. */
export interface FeedSink {
  /** One event, in offset order; `json` is its wire JSON `{name,args,namespace,id}`. */
  event(event: PushEvent, json: string): void;
  /**
   * The log cannot replay what the client missed. `offset` is where the client stands now (every
   * later event follows it); null when the log could not be read at all.
   */
  notRecovered(reason: NotRecoveredReason | 'unavailable', offset: string | null): void;
}

export interface FeedScope {
  readonly user: UserKey;
  /** The connection's path, for the publishers' path filters. */
  readonly path: string;
  /** The connection's id, for `sourceToken` echo suppression. */
  readonly connectionId: string;
}

/** How a resume from an offset was answered (`tidings_history_replays_total{result}`). */
export type ResumeResult = 'recovered' | 'not_recovered';

/** Live events held while the log is read; beyond this they are dropped and fetched from the log instead. */
const MAX_HELD = 1000;

type Held = { event: PushEvent; json: string };

/**
 * One connection's stream of events in offset order, with no gap and no duplicate, on any transport.
 *
 * The connection is in the hub (so live events for it arrive here) before the log is read; live
 * events are held until the replay has been sent, then those past the replay go out. Live, an event
 * whose offset is not the next one (a remote batch from another node still on its way, or events a
 * path filter kept from this connection) makes the feed read the gap from the log, so a client that
 * resumes from the last offset it saw can never skip one. An event the log could not take (offset
 * of a `u…` epoch) goes out at once and changes nothing.
 */
export class ResumeFeed {
  readonly #log: EventLog;
  readonly #limits: () => HistoryLimits;
  readonly #scope: FeedScope;
  readonly #logger: Logger | undefined;
  #sink: FeedSink | null = null;
  #phase: 'preparing' | 'live' | 'filling' | 'closed' = 'preparing';
  #held: Held[] = [];
  #overflow = false;
  #replay: LogRead | null = null;
  #unavailable = false;
  #epoch: string | null = null;
  #last = 0;
  /** The client gave an offset to resume from (not "from now"). */
  #resuming = false;
  readonly #onResume: ((result: ResumeResult) => void) | undefined;

  constructor(deps: { log: EventLog; limits: () => HistoryLimits; scope: FeedScope; logger?: Logger; onResume?: (result: ResumeResult) => void }) {
    this.#log = deps.log;
    this.#limits = deps.limits;
    this.#scope = deps.scope;
    this.#logger = deps.logger;
    this.#onResume = deps.onResume;
  }

  /** Reads the log after `since` (null: just its head, "from now"). Rejects when the log cannot be read. */
  async prepare(since: Offset | null): Promise<void> {
    this.#resuming = since !== null;
    const r = await this.#log.read(this.#scope.user, since, this.#limits());
    this.#replay = r;
    this.#epoch = r.epoch;
    this.#last = r.last;
  }

  /**
   * For sockets: prepare(), but a log that cannot be read is not an error: attach() then says so
   * (`unavailable`) and the connection is live from there.
   */
  async tryPrepare(since: Offset | null): Promise<void> {
    try {
      await this.prepare(since);
    } catch (err) {
      this.#logger?.warn({ user: this.#scope.user, err: String(err) }, 'could not read the event log to resume a connection');
      this.#unavailable = true;
    }
  }

  /** Sends what prepare() found, then the live events held meanwhile, then goes live. */
  attach(sink: FeedSink): void {
    if (this.#phase === 'closed') return;
    this.#sink = sink;
    const r = this.#replay;
    this.#replay = null;
    if (this.#unavailable) sink.notRecovered('unavailable', null);
    else if (r?.recovered) for (const e of r.entries) this.#replayEntry(r.epoch, e);
    else if (r) sink.notRecovered(r.reason, formatOffset({ epoch: r.epoch, seq: r.last }));
    // A resume is answered here, on every transport: counted once per connection that gave an offset.
    if (this.#resuming) this.#onResume?.(r?.recovered && !this.#unavailable ? 'recovered' : 'not_recovered');
    this.#drain(false);
  }

  /** A live event for this connection (the hub already applied the path filter and sourceToken). */
  push(event: PushEvent, json: string): void {
    if (this.#phase === 'closed') return;
    if (this.#phase !== 'live') return this.#hold({ event, json });
    this.#accept({ event, json }, true);
  }

  /** The offset this connection has reached (delivered or known to hold nothing for it), if any. */
  position(): string | null {
    return this.#epoch === null ? null : formatOffset({ epoch: this.#epoch, seq: this.#last });
  }

  close(): void {
    this.#phase = 'closed';
    this.#held = [];
    this.#sink = null;
  }

  #hold(h: Held): void {
    if (this.#held.length >= MAX_HELD) this.#overflow = true;
    else this.#held.push(h);
  }

  #emit(h: Held): void {
    this.#sink?.event(h.event, h.json);
  }

  #accept(h: Held, mayFill: boolean): void {
    const o = parseOffset(h.event.id);
    if (o === null || isUnlogged(o)) return this.#emit(h);
    if (this.#epoch === null) {
      // The log could not be read when this connection started: take the stream from here.
      this.#epoch = o.epoch;
      this.#last = o.seq;
      return this.#emit(h);
    }
    if (o.epoch === this.#epoch) {
      if (o.seq <= this.#last) return;
      if (o.seq === this.#last + 1 || !mayFill) {
        this.#last = o.seq;
        return this.#emit(h);
      }
      return this.#fill(h, { epoch: this.#epoch, seq: this.#last });
    }
    // The log started a new epoch (it was lost): everything of the new one is read from its start.
    if (mayFill) return this.#fill(h, { epoch: o.epoch, seq: 0 });
    this.#epoch = o.epoch;
    this.#last = o.seq;
    this.#emit(h);
  }

  /** Reads the log from `from`, holding live events meanwhile; `trigger` is re-examined after it. */
  #fill(trigger: Held | null, from: Offset): void {
    this.#phase = 'filling';
    if (trigger) this.#held.unshift(trigger);
    this.#log.read(this.#scope.user, from, this.#limits()).then(
      (r) => {
        if (this.#phase === 'closed') return;
        if (r.recovered) for (const e of r.entries) this.#replayEntry(r.epoch, e);
        else this.#sink?.notRecovered(r.reason, formatOffset({ epoch: r.epoch, seq: r.last }));
        this.#epoch = r.epoch;
        this.#last = r.last;
        this.#drain(trigger !== null);
      },
      (err: unknown) => {
        if (this.#phase === 'closed') return;
        // Without the log the held events go out as they are, rather than not at all.
        this.#logger?.warn({ user: this.#scope.user, err: String(err) }, 'could not read the event log to fill a gap');
        const held = this.#held;
        this.#held = [];
        this.#phase = 'live';
        for (const h of held) this.#accept(h, false);
      },
    );
  }

  /** Goes live through the held events; the first one is the trigger of a fill when `triggered`. */
  #drain(triggered: boolean): void {
    this.#phase = 'live';
    const held = this.#held;
    this.#held = [];
    for (let i = 0; i < held.length; i++) {
      if (this.#phase !== 'live') {
        // A fill started: what is left waits for it, after the fill's trigger.
        this.#held.push(...held.slice(i));
        return;
      }
      this.#accept(held[i], !(triggered && i === 0));
    }
    if (this.#overflow && this.#phase === 'live' && this.#epoch !== null) {
      this.#overflow = false;
      this.#fill(null, { epoch: this.#epoch, seq: this.#last });
    }
  }

  #replayEntry(epoch: string, e: LogEntry): void {
    if (!matchesPath(e.pathFilter, this.#scope.path)) return;
    if (e.sourceToken !== null && e.sourceToken === this.#scope.connectionId) return;
    const id = formatOffset({ epoch, seq: e.seq });
    let body: { name: string; args: unknown[]; namespace: string };
    try {
      body = JSON.parse(e.body) as typeof body;
    } catch {
      this.#logger?.warn({ user: this.#scope.user, offset: id }, 'skipped a malformed event in the log');
      return;
    }
    this.#sink?.event({ id, name: body.name, args: body.args, namespace: body.namespace }, withId(id, e.body));
  }
}
