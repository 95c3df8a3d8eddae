import { BackendUnavailableError, isBackendUnavailable } from '../backend-unavailable.js';
import type { PushEvent, Publication, UserKey } from '../domain/types.js';
import { userKey } from '../domain/types.js';
import type { HistoryLimits } from '../ports/event-log.js';
import { formatOffset, UnloggedOffsets } from '../history/offset.js';
import type { RemoteBatchItem } from '../ports/cluster-bus.js';
import type { PublishLookup } from '../ports/publish-lookup.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { DedupeWindow } from './dedupe-window.js';
import { EventIds } from './event-ids.js';
import type { LocalHub } from './local-hub.js';
import { withId } from './wire.js';

/** The part of the remote-delivery buffer the publisher needs. */
export interface RemoteOffer {
  offer(o: { user: string; pathFilter: string | null; targets: readonly string[]; item: { id: string; body: string; sourceToken: string | null } }): void;
}

export interface PublishResult {
  readonly id: string;
  readonly duplicate: boolean;
  /** Connections on this node that got it at once. */
  readonly local: number;
  /** Other nodes it was handed to the remote-delivery buffer for. */
  readonly remoteNodes: readonly string[];
}

/**
 * The path of one event: one publish lookup (idempotency + history append + the nodes holding the
 * user) → local sockets → remote-delivery buffer for every other node that holds a connection of
 * the user (and only those). And the other end: a batch from another node to this node's sockets.
 */
export class Publisher {
  readonly #nodeId: string;
  readonly #hub: LocalHub;
  readonly #lookup: PublishLookup;
  readonly #historyLimits: () => HistoryLimits;
  readonly #unlogged = new UnloggedOffsets();
  readonly #backendUp: () => boolean;
  readonly #remote: RemoteOffer;
  readonly #dedupeTtlMs: () => number;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #ids: EventIds;
  readonly #lastNodes = new Map<UserKey, readonly string[]>();
  /** This node's own memory, for idempotency keys while the shared backend is unreachable. */
  readonly #fallbackDedupe: DedupeWindow;

  constructor(deps: { nodeId: string; hub: LocalHub; lookup: PublishLookup; historyLimits: () => HistoryLimits; backendUp: () => boolean; fallbackDedupe: DedupeWindow; remote: RemoteOffer; dedupeTtlMs: () => number; metrics: Metrics; log: Logger }) {
    this.#nodeId = deps.nodeId;
    this.#hub = deps.hub;
    this.#lookup = deps.lookup;
    this.#historyLimits = deps.historyLimits;
    this.#backendUp = deps.backendUp;
    this.#fallbackDedupe = deps.fallbackDedupe;
    this.#remote = deps.remote;
    this.#dedupeTtlMs = deps.dedupeTtlMs;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#ids = new EventIds(deps.nodeId);
  }

  async publish(p: Publication, source = 'api'): Promise<PublishResult> {
    const user = userKey(p.user);
    const body = JSON.stringify({ name: p.name, args: p.args, namespace: p.namespace });
    let nodes: readonly string[];
    let id: string;
    try {
      // Known down: do not wait for a lookup to time out; local connections get the event at once.
      if (!this.#backendUp()) throw new BackendUnavailableError('the cluster backend is disconnected');
      // ── history: the one place where an event gets its offset ──────────────────────────────
      // The idempotency check, the append to the user's event log and the nodes holding the user
      // are one call (one round trip on Redis). The offset is the event's id on every transport,
      // so even local sockets get the event only once it is known.
      const r = await this.#lookup.lookup({
        user,
        dedupeKey: p.key,
        dedupeTtlMs: this.#dedupeTtlMs(),
        append: { body, pathFilter: p.pathFilter, sourceToken: p.sourceToken },
        limits: this.#historyLimits(),
      });
      if (!r.fresh || r.offset === null) return this.#duplicate(this.#ids.next());
      id = formatOffset(r.offset);
      nodes = r.nodes;
      this.#rememberNodes(user, nodes);
    } catch (e) {
      if (!isBackendUnavailable(e)) throw e;
      // The backend is unreachable: this node's memory deduplicates, the event goes out with an
      // offset the log does not know (resuming from it is "not recovered"), and the remote batches
      // go to the nodes last known to hold the user; the buffer keeps them until the backend is back.
      if (p.key !== null && !this.#fallbackDedupe.firstSeen(`${user}:${p.key}`, this.#dedupeTtlMs())) return this.#duplicate(this.#ids.next());
      id = this.#unlogged.next();
      nodes = this.#lastNodes.get(user) ?? [];
      this.#log.warn({ user, err: String(e) }, 'registry unreachable: delivered locally, remote delivery to the last known nodes');
    }
    this.#metrics.countPublished(source);
    const event: PushEvent = { id, name: p.name, args: p.args, namespace: p.namespace };
    const local = this.#hub.deliver(user, event, withId(id, body), p.pathFilter, p.sourceToken);
    if (local > 0) this.#metrics.countDelivered('local', local);
    const remoteNodes = nodes.filter((n) => n !== this.#nodeId);
    if (remoteNodes.length > 0) {
      this.#remote.offer({ user, pathFilter: p.pathFilter, targets: remoteNodes, item: { id, body, sourceToken: p.sourceToken } });
    }
    return { id, duplicate: false, local, remoteNodes };
  }

  #rememberNodes(user: UserKey, nodes: readonly string[]): void {
    if (this.#lastNodes.size >= 100_000) this.#lastNodes.clear();
    if (nodes.length > 0) this.#lastNodes.set(user, nodes);
    else this.#lastNodes.delete(user);
  }

  #duplicate(id: string): PublishResult {
    this.#metrics.duplicates.inc();
    return { id, duplicate: true, local: 0, remoteNodes: [] };
  }

  /**
   * A batch from another node's buffer: local fan-out with the same path and echo rules. Each
   * payload text is parsed once, here, and only for users with connections on this node. Each
   * payload stands alone: one that cannot be parsed or delivered is logged and costs no other
   * payload, of this user or of another user in the batch.
   */
  receive(batch: readonly RemoteBatchItem[]): void {
    this.#metrics.remoteBatchesIn.inc();
    for (const item of batch) {
      if (!this.#hub.has(item.user)) continue;
      // Several events for one user: each socket writes them in one go (the loop cannot throw:
      // every payload has its own catch, so the release is always reached).
      const release = item.payloads.length > 1 ? this.#hub.hold(item.user) : null;
      for (let i = 0; i < item.payloads.length; i++) {
        const json = item.payloads[i];
        try {
          const event = JSON.parse(json) as PushEvent;
          const n = this.#hub.deliver(item.user, event, json, item.pathFilter, item.sourceTokens[i] ?? null);
          if (n > 0) this.#metrics.countDelivered('remote', n);
        } catch (err) {
          this.#log.warn({ user: item.user, err: String(err) }, 'dropped a remote payload that could not be delivered; the rest of the batch goes on');
        }
      }
      release?.();
    }
  }
}
