import type { RemoteBatchItem } from '../ports/cluster-bus.js';
import { withId } from './wire.js';

/**
 * Remote-delivery buffer (docs/architecture.md): coalesces events for other nodes per (user, pathFilter) and
 * sends everything due to each node in one batch per timer tick.
 *
 * Deliberate differences from the reference deployment (reference §4): payloads stay in publish
 * order (oldest first), and timings are re-read on every offer and tick, so a reload takes effect
 * at once, also for elements already buffered. `delayDuration=0` sends on the next turn of the
 * event loop (everything offered in the same turn in one batch per node), not on the next timer
 * tick: no coalescing was asked for, so nothing should wait up to `timerFrequency`.
 */

export interface RemoteBufferTimings {
  /** ms an element is held after its latest offer. */
  readonly delayDuration: number;
  /** ms cap on holding, counted from the element's first offer. */
  readonly maxDelayDuration: number;
  /** ms between ticks. */
  readonly timerFrequency: number;
}

export interface RemoteOffer {
  /** `"<userId>@<contextId>"`. */
  readonly user: string;
  readonly pathFilter: string | null;
  /** Nodes holding connections of this user; the caller never offers with none. */
  readonly targets: readonly string[];
  readonly item: {
    readonly id: string;
    /** JSON object text of `{name,args,namespace}`. */
    readonly body: string;
    readonly sourceToken: string | null;
  };
}

export interface RemoteBufferStats {
  /** Payload copies not yet confirmed sent (buffered, queued, or in flight), counted once per target node. */
  readonly pending: number;
  /** Payload copies dropped because the queue for unreachable nodes exceeded `maxPending()`. */
  readonly dropped: number;
  /** Successful `send` calls (one per node per tick). */
  readonly sentBatches: number;
  /** Payload copies in successful `send` calls. */
  readonly sentPayloads: number;
}

export interface RemoteBufferOptions {
  timings: () => RemoteBufferTimings;
  send: (nodeId: string, items: RemoteBatchItem[]) => Promise<void>;
  /** Bound on payload copies kept for nodes that cannot be sent to right now. */
  maxPending?: () => number;
  now?: () => number;
  log?: { warn(obj: object, msg: string): void };
  /** Metrics hooks: coalesced offers, dropped copies, and each sent batch's age (ms since its oldest event was buffered). */
  observe?: RemoteBufferObserver;
}

export interface RemoteBufferObserver {
  coalesced(): void;
  dropped(copies: number): void;
  flushed(ageMs: number): void;
}

/** Default of `tidings.remote.maxPending` in src/config/schema.ts. */
export const DEFAULT_MAX_PENDING = 10_000;

interface Element {
  readonly seq: number;
  readonly user: string;
  readonly pathFilter: string | null;
  readonly first: number;
  last: number;
  readonly targets: Set<string>;
  readonly payloads: string[];
  readonly sourceTokens: (string | null)[];
  /** sourceToken → bodies already held, for collapsing identical (body, sourceToken) offers. */
  readonly seen: Map<string | null, Set<string>>;
}

interface Queued {
  /** Seq of the element it came from: queues stay sorted by it, so the smallest head is the oldest. */
  readonly seq: number;
  /** When its element's first event was buffered. */
  readonly first: number;
  item: RemoteBatchItem;
}

interface NodeQueue {
  items: Queued[];
  /** Settles (never rejects) when the current send for this node settles. */
  inFlight: Promise<void> | null;
  failing: boolean;
}

/** Adds the id to the body without re-parsing it: the body is a JSON object text. */

export class RemoteBuffer {
  private readonly timings: () => RemoteBufferTimings;
  private readonly send: RemoteBufferOptions['send'];
  private readonly maxPending: () => number;
  private readonly now: () => number;
  private readonly log: RemoteBufferOptions['log'];
  private readonly observe: RemoteBufferObserver | undefined;

  /** Insertion order of a Map = order of first offer, which is the emission order. */
  private readonly elements = new Map<string, Element>();
  private readonly nodes = new Map<string, NodeQueue>();
  private seq = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private immediate: ReturnType<typeof setImmediate> | null = null;
  private armedFrequency = 0;
  private lastTimings: RemoteBufferTimings | null = null;
  private stopped = false;
  private queuedPayloads = 0;
  private inFlightPayloads = 0;
  private dropped = 0;
  private sentBatches = 0;
  private sentPayloads = 0;

  constructor(options: RemoteBufferOptions) {
    this.timings = options.timings;
    this.send = options.send;
    this.maxPending = options.maxPending ?? (() => DEFAULT_MAX_PENDING);
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.observe = options.observe;
  }

  offer(offer: RemoteOffer): void {
    if (offer.targets.length === 0) return; // nobody to deliver to; caller contract says this does not happen
    const now = this.now();
    const key = offer.pathFilter === null ? offer.user + '\u0000' : offer.user + '\u0001' + offer.pathFilter;
    let el = this.elements.get(key);
    if (!el) {
      el = { seq: this.seq++, user: offer.user, pathFilter: offer.pathFilter, first: now, last: now, targets: new Set(), payloads: [], sourceTokens: [], seen: new Map() };
      this.elements.set(key, el);
    } else {
      this.observe?.coalesced();
    }
    // Every offer re-arms, a collapsed duplicate included; the cap is applied when checking due-ness.
    el.last = now;
    for (const t of offer.targets) el.targets.add(t);
    const { id, body, sourceToken } = offer.item;
    let bodies = el.seen.get(sourceToken);
    if (!bodies) el.seen.set(sourceToken, (bodies = new Set()));
    if (!bodies.has(body)) {
      bodies.add(body);
      el.payloads.push(withId(id, body));
      el.sourceTokens.push(sourceToken);
    }
    const t = this.readTimings();
    if (t.delayDuration <= 0 && !this.stopped && !this.immediate) {
      this.immediate = setImmediate(() => {
        this.immediate = null;
        this.tick();
      });
    }
    this.syncTimer(t);
  }

  /** Re-reads the timings now; re-schedules the timer if `timerFrequency` changed. */
  reconfigure(): void {
    this.syncTimer(this.readTimings());
  }

  /** Sends everything buffered now, due or not (shutdown). Settles when those sends settle; never rejects. */
  flush(): Promise<void> {
    this.take(() => true);
    const waits: Promise<void>[] = [];
    for (const [nodeId, q] of this.nodes) waits.push(q.inFlight ? this.afterInFlight(nodeId, q) : this.dispatch(nodeId, q));
    this.enforceBound();
    this.syncTimer(this.lastTimings ?? this.readTimings());
    return Promise.all(waits).then(() => undefined);
  }

  /**
   * Cancels the timer for good: later offers are still buffered but go out only via flush(),
   * so a shutdown can stop() then flush() without a tick racing it.
   */
  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  stats(): RemoteBufferStats {
    let buffered = 0;
    for (const el of this.elements.values()) buffered += el.payloads.length * el.targets.size;
    return { pending: buffered + this.queuedPayloads + this.inFlightPayloads, dropped: this.dropped, sentBatches: this.sentBatches, sentPayloads: this.sentPayloads };
  }

  private tick(): void {
    const t = this.readTimings();
    const now = this.now();
    const delay = t.delayDuration;
    // maxDelay < delay is treated as maxDelay = delay (the reference throws instead): an element is
    // then held exactly `delay` after its first offer, re-arming never extends it.
    const cap = Math.max(delay, t.maxDelayDuration);
    this.take((el) => Math.min(el.last + delay, el.first + cap) <= now);
    for (const [nodeId, q] of this.nodes) if (!q.inFlight && q.items.length > 0) void this.dispatch(nodeId, q);
    this.enforceBound();
    this.syncTimer(t);
  }

  /** Moves the elements matching `isDue` into their target nodes' queues, in first-offer order. */
  private take(isDue: (el: Element) => boolean): void {
    for (const [key, el] of this.elements) {
      if (!isDue(el)) continue;
      this.elements.delete(key);
      const item: RemoteBatchItem = { user: el.user, pathFilter: el.pathFilter, sourceTokens: el.sourceTokens, payloads: el.payloads };
      for (const nodeId of el.targets) {
        let q = this.nodes.get(nodeId);
        if (!q) this.nodes.set(nodeId, (q = { items: [], inFlight: null, failing: false }));
        q.items.push({ seq: el.seq, first: el.first, item });
        this.queuedPayloads += el.payloads.length;
      }
    }
  }

  /** One send with everything queued for the node; on rejection the items go back to the front. */
  private dispatch(nodeId: string, q: NodeQueue): Promise<void> {
    const batch = q.items;
    q.items = [];
    if (batch.length === 0) return Promise.resolve();
    let count = 0;
    for (const b of batch) count += b.item.payloads.length;
    this.queuedPayloads -= count;
    this.inFlightPayloads += count;
    let sent: Promise<void>;
    let ok = false;
    try {
      sent = this.send(nodeId, batch.map((b) => b.item));
    } catch (err) {
      sent = Promise.reject(err); // a synchronous throw is treated like a rejection
    }
    const settled = sent.then(
      () => {
        this.sentBatches++;
        this.sentPayloads += count;
        if (this.observe) this.observe.flushed(this.now() - Math.min(...batch.map((b) => b.first)));
        q.failing = false;
        ok = true;
      },
      (err: unknown) => {
        // Older than anything queued meanwhile, so ahead of it: publish order holds across retries.
        q.items = batch.concat(q.items);
        this.queuedPayloads += count;
        if (!q.failing) this.log?.warn({ err, nodeId, payloads: count }, 'remote delivery failed; keeping it for retry');
        q.failing = true;
      },
    ).then(() => {
      this.inFlightPayloads -= count;
      q.inFlight = null;
      // Items queued meanwhile were already due: they go now rather than wait for the next tick.
      // After a failure they wait for the tick, so an unreachable node is not retried in a loop.
      if (ok && q.items.length > 0 && !this.stopped) return void this.dispatch(nodeId, q);
      if (q.items.length === 0) this.nodes.delete(nodeId);
      this.enforceBound();
      // A failure may need the timer back (it stops when nothing is sendable).
      this.syncTimer(this.lastTimings ?? this.readTimings());
    });
    q.inFlight = settled;
    return settled;
  }

  private async afterInFlight(nodeId: string, q: NodeQueue): Promise<void> {
    while (q.inFlight) await q.inFlight;
    if (q.items.length > 0) await this.dispatch(nodeId, q);
  }

  /** Keeps the queued (not in-flight) payload copies within maxPending(), dropping the oldest first. */
  private enforceBound(): void {
    let excess = this.queuedPayloads - Math.max(0, Math.floor(this.maxPending()));
    while (excess > 0) {
      let oldest: NodeQueue | undefined;
      for (const q of this.nodes.values()) {
        if (q.items.length > 0 && (!oldest || q.items[0].seq < oldest.items[0].seq)) oldest = q;
      }
      if (!oldest) break;
      const head = oldest.items[0];
      const n = head.item.payloads.length;
      const drop = Math.min(n, excess);
      if (drop === n) oldest.items.shift();
      // Items are shared between target nodes: replace, never mutate.
      else head.item = { ...head.item, payloads: head.item.payloads.slice(drop), sourceTokens: head.item.sourceTokens.slice(drop) };
      this.queuedPayloads -= drop;
      this.dropped += drop;
      this.observe?.dropped(drop);
      excess -= drop;
    }
    for (const [nodeId, q] of this.nodes) if (q.items.length === 0 && !q.inFlight) this.nodes.delete(nodeId);
  }

  /** A throwing timings() must not kill the timer callback (an uncaught throw ends the process). */
  private readTimings(): RemoteBufferTimings {
    try {
      const t = this.timings();
      this.lastTimings = t;
      return t;
    } catch (err) {
      if (!this.lastTimings) throw err;
      this.log?.warn({ err }, 'remote buffer timings unreadable; keeping the previous ones');
      return this.lastTimings;
    }
  }

  /** Timer runs only while something can be sent: no idle wake-ups. Re-armed when the frequency changed. */
  private syncTimer(t: RemoteBufferTimings): void {
    let needed = !this.stopped && this.elements.size > 0;
    if (!needed && !this.stopped) {
      for (const q of this.nodes.values()) if (!q.inFlight && q.items.length > 0) needed = true;
    }
    if (!needed) return this.disarm();
    const frequency = Math.max(1, t.timerFrequency); // 0 would spin
    if (this.timer && this.armedFrequency === frequency) return;
    this.disarm();
    this.armedFrequency = frequency;
    this.timer = setInterval(() => this.tick(), frequency);
    this.timer.unref(); // never keeps the process alive
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.stopped && this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
  }
}
