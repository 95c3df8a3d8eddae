import { randomUUID } from 'node:crypto';
import type { BusMessage, ClusterBus } from '../../ports/cluster-bus.js';
import { RedisKeys } from './keys.js';
import { backoffMs, duplicateClient, isCluster, type LogLike, type RedisClient } from './redis-client.js';

export interface RedisClusterBusOptions {
  readonly prefix?: string;
  readonly nodeId: string;
  readonly log?: LogLike;
  /** Approximate cap on a node's inbox (XADD MAXLEN ~). Default 10000. */
  readonly inboxMaxLen?: number;
  /** An inbox nobody writes to for this long disappears (inboxes of dead nodes). Default 300000. */
  readonly inboxTtlMs?: number;
  /** XREAD BLOCK timeout; only bounds how long a stop waits. Default 5000. */
  readonly readBlockMs?: number;
  /** Metrics hook: seconds of each append's round trip to Redis. */
  readonly onRoundTrip?: (seconds: number) => void;
}

const KNOWN_TYPES = new Set(['deliver', 'session-ended', 'config-changed', 'reload']);

/**
 * Node-addressed messages go through a per-node inbox stream, read by its node with XREAD BLOCK
 * on a dedicated connection from the last id it saw: a connection blip (or a Redis restart
 * that keeps data) loses nothing. The reader starts after the newest entry present at start-up;
 * older entries were meant for a previous life of this node id and are stale. Read entries are
 * trimmed (XTRIM MINID), MAXLEN ~ bounds an inbox nobody reads, and every XADD refreshes a
 * TTL so the inbox of a node that is gone for good disappears.
 *
 * Broadcasts use pub/sub (sharded SPUBLISH/SSUBSCRIBE on a Redis Cluster, so a broadcast costs
 * one shard, not every shard), best-effort; the sender gets its own broadcast like everyone else.
 *
 * Stream entries carry one field: `data` (a BusMessage JSON) or `ping` (a selfCheck nonce).
 * Anything malformed is logged and dropped; it never reaches the handlers or stops the loop.
 */
export class RedisClusterBus implements ClusterBus {
  readonly nodeId: string;
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #log?: LogLike;
  readonly #inbox: string;
  readonly #channel: string;
  readonly #maxLen: number;
  readonly #ttlMs: number;
  readonly #blockMs: number;
  readonly #handlers: ((m: BusMessage) => void)[] = [];
  readonly #onRoundTrip: ((seconds: number) => void) | undefined;
  readonly #pings = new Map<string, () => void>();

  #reader: RedisClient | null = null;
  #sub: RedisClient | null = null;
  #loop: Promise<void> | null = null;
  #lastId = '0-0';
  #stopped = false;
  #stopping: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #trimTo: string | null = null;
  #trimming = false;

  constructor(client: RedisClient, opts: RedisClusterBusOptions) {
    this.#client = client;
    this.#keys = new RedisKeys(opts.prefix);
    this.nodeId = opts.nodeId;
    this.#log = opts.log;
    this.#inbox = this.#keys.nodeInbox(opts.nodeId);
    this.#channel = this.#keys.broadcastChannel();
    this.#maxLen = opts.inboxMaxLen ?? 10_000;
    this.#ttlMs = opts.inboxTtlMs ?? 300_000;
    this.#blockMs = opts.readBlockMs ?? 5000;
    this.#onRoundTrip = opts.onRoundTrip;
  }

  async start(): Promise<void> {
    const newest = await this.#client.xrevrange(this.#inbox, '+', '-', 'COUNT', 1);
    this.#lastId = newest[0]?.[0] ?? '0-0';
    this.#sub = duplicateClient(this.#client, { role: `bus-sub-${this.nodeId}`, subscriber: true });
    const onBroadcast = (_channel: string, text: string): void => this.#receive(text, 'broadcast');
    if (isCluster(this.#sub)) {
      this.#sub.on('smessage', onBroadcast);
      await this.#sub.ssubscribe(this.#channel);
    } else {
      this.#sub.on('message', onBroadcast);
      await this.#sub.subscribe(this.#channel);
    }
    this.#reader = duplicateClient(this.#client, { role: `bus-reader-${this.nodeId}`, blocking: true });
    this.#loop = this.#readLoop(this.#reader);
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      this.#wake?.();
      // The bus owns its duplicated connections (not the injected client): close them.
      this.#reader?.disconnect();
      this.#sub?.disconnect();
      await this.#loop;
      for (const resolve of this.#pings.values()) resolve();
    })();
    return this.#stopping;
  }

  async sendToNode(nodeId: string, message: BusMessage): Promise<void> {
    await this.#append(this.#keys.nodeInbox(nodeId), 'data', JSON.stringify(message));
  }

  async broadcast(message: BusMessage): Promise<void> {
    const text = JSON.stringify(message);
    if (isCluster(this.#client)) await this.#client.spublish(this.#channel, text);
    else await this.#client.publish(this.#channel, text);
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.#handlers.push(handler);
  }

  /** True when a ping through this node's own inbox comes back within `timeoutMs` (for /health/ready). */
  async selfCheck(timeoutMs: number): Promise<boolean> {
    if (!this.#loop || this.#stopped) return false;
    const nonce = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<boolean>((resolve) => {
      this.#pings.set(nonce, () => resolve(!this.#stopped));
      timer = setTimeout(() => resolve(false), timeoutMs);
      // Not awaited on its own: a slow failure (Redis down) must not outlast timeoutMs.
      this.#append(this.#inbox, 'ping', nonce).catch(() => resolve(false));
    });
    try {
      return await back;
    } finally {
      clearTimeout(timer);
      this.#pings.delete(nonce);
    }
  }

  /** XADD and refresh the inbox TTL in one round trip (same key, so one slot on a Cluster). */
  async #append(inbox: string, field: 'data' | 'ping', value: string): Promise<void> {
    const t0 = performance.now();
    const results = await this.#client
      .pipeline()
      .xadd(inbox, 'MAXLEN', '~', this.#maxLen, '*', field, value)
      .pexpire(inbox, this.#ttlMs)
      .exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('redis pipeline was aborted');
    this.#onRoundTrip?.((performance.now() - t0) / 1000);
  }

  async #readLoop(reader: RedisClient): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        const res = (await reader.xread('COUNT', 100, 'BLOCK', this.#blockMs, 'STREAMS', this.#inbox, this.#lastId)) as [string, [string, string[]][]][] | null;
        if (failures > 0) this.#log?.info({ nodeId: this.nodeId }, 'bus inbox reader works again');
        failures = 0;
        if (!res) continue;
        for (const [, entries] of res) {
          for (const [id, fields] of entries) {
            this.#lastId = id;
            this.#entry(fields);
          }
        }
        this.#trim(this.#lastId);
      } catch (err) {
        if (this.#stopped) break;
        if (failures++ === 0) this.#log?.warn({ nodeId: this.nodeId, err: String(err) }, 'bus inbox read failed; retrying from the last id seen');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoffMs(failures));
          this.#wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.#wake = null;
      }
    }
  }

  #entry(fields: string[]): void {
    const [field, value] = fields;
    if (field === 'ping' && typeof value === 'string') {
      this.#pings.get(value)?.();
      return;
    }
    if (field === 'data' && typeof value === 'string') {
      this.#receive(value, 'inbox');
      return;
    }
    this.#log?.warn({ nodeId: this.nodeId, field: String(field) }, 'malformed bus inbox entry dropped');
  }

  #receive(text: string, source: 'inbox' | 'broadcast'): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.#log?.warn({ nodeId: this.nodeId, source, bytes: text.length }, 'bus message is not JSON; dropped');
      return;
    }
    if (!isBusMessage(message)) {
      this.#log?.warn({ nodeId: this.nodeId, source, bytes: text.length }, 'bus message has an unknown shape; dropped');
      return;
    }
    for (const h of this.#handlers) {
      try {
        h(message);
      } catch (err) {
        this.#log?.warn({ nodeId: this.nodeId, type: message.type, err: String(err) }, 'bus message handler threw');
      }
    }
  }

  /** Drops what was read; one XTRIM at a time, always to the newest id read. */
  #trim(lastId: string): void {
    this.#trimTo = lastId;
    if (this.#trimming) return;
    this.#trimming = true;
    void (async () => {
      while (this.#trimTo !== null && !this.#stopped) {
        const id = this.#trimTo;
        this.#trimTo = null;
        await this.#client.xtrim(this.#inbox, 'MINID', nextId(id)).catch(() => {});
      }
    })().finally(() => {
      this.#trimming = false;
    });
  }
}

/** The smallest stream id after `id` (MINID keeps ids ≥ its argument). */
function nextId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${BigInt(seq ?? '0') + 1n}`;
}

/** Known types must have their fields; an unknown type (a newer node) passes for handlers to ignore. */
function isBusMessage(m: unknown): m is BusMessage {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  if (typeof o.type !== 'string' || typeof o.from !== 'string') return false;
  if (!KNOWN_TYPES.has(o.type)) return true;
  switch (o.type) {
    case 'deliver':
      return Array.isArray(o.batch) && o.batch.every(isBatchItem);
    case 'session-ended':
      return typeof o.sessionId === 'string';
    case 'config-changed':
      return typeof o.reason === 'string';
    default:
      return true;
  }
}

function isBatchItem(b: unknown): boolean {
  if (typeof b !== 'object' || b === null) return false;
  const o = b as Record<string, unknown>;
  return (
    typeof o.user === 'string' &&
    (o.pathFilter === null || typeof o.pathFilter === 'string') &&
    Array.isArray(o.payloads) &&
    o.payloads.every((p) => typeof p === 'string') &&
    Array.isArray(o.sourceTokens) &&
    o.sourceTokens.length === o.payloads.length
  );
}
