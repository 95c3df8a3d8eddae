import { randomUUID } from 'node:crypto';
import type { BusMessage, ClusterBus } from '../../ports/cluster-bus.js';
import { encodeBusMessage } from '../bus-codec.js';
import { BusReceiver } from '../bus-receiver.js';
import { RedisKeys } from './keys.js';
import type { LogLike } from '../log-like.js';
import { backoffMs, duplicateClient, isCluster, type RedisClient } from './redis-client.js';
import { named } from './redis-errors.js';

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
 * Stream entries carry one field: `data` (a BusMessage in the shared codec's text) or `ping` (a
 * selfCheck nonce). Decoding and handler isolation are the shared `BusReceiver`'s: anything
 * malformed is logged and dropped; it never reaches the handlers or stops the loop.
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
  readonly #receiver: BusReceiver;
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
    this.#receiver = new BusReceiver(opts.nodeId, opts.log);
    this.#onRoundTrip = opts.onRoundTrip;
  }

  async start(): Promise<void> {
    const newest = await this.#client.xrevrange(this.#inbox, '+', '-', 'COUNT', 1);
    this.#lastId = newest[0]?.[0] ?? '0-0';
    this.#sub = duplicateClient(this.#client, { role: `bus-sub-${this.nodeId}`, subscriber: true });
    const onBroadcast = (_channel: string, text: string): void => this.#receiver.receive(text, 'broadcast');
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
    await named(this.#append(this.#keys.nodeInbox(nodeId), 'data', encodeBusMessage(message)));
  }

  async broadcast(message: BusMessage): Promise<void> {
    const text = encodeBusMessage(message);
    if (isCluster(this.#client)) await named(this.#client.spublish(this.#channel, text));
    else await named(this.#client.publish(this.#channel, text));
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.#receiver.add(handler);
  }

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
      this.#receiver.receive(value, 'inbox');
      return;
    }
    this.#log?.warn({ nodeId: this.nodeId, field: String(field) }, 'malformed bus inbox entry dropped');
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
