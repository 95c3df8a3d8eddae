import { EventEmitter } from 'node:events';
import type { BusMessage, ClusterBus } from '../../ports/cluster-bus.js';
import { encodeBusMessage } from '../bus-codec.js';
import { BusReceiver } from '../bus-receiver.js';
import type { LogLike } from '../log-like.js';

/**
 * In-process bus; nodes sharing one `hub` form a cluster inside one process. Messages travel as
 * the same text the Redis bus sends, through the same receiver, so both buses behave alike.
 */
export class MemoryClusterBus implements ClusterBus {
  readonly nodeId: string;
  readonly #hub: EventEmitter;
  readonly #receiver: BusReceiver;
  readonly #onDirect = (text: string) => this.#receiver.receive(text, 'inbox');
  readonly #onBroadcast = (text: string) => this.#receiver.receive(text, 'broadcast');
  #started = false;

  constructor(nodeId: string, hub: EventEmitter = new EventEmitter(), log?: LogLike) {
    this.nodeId = nodeId;
    this.#hub = hub;
    this.#hub.setMaxListeners(0);
    this.#receiver = new BusReceiver(nodeId, log);
  }

  async start(): Promise<void> {
    this.#hub.on(`node:${this.nodeId}`, this.#onDirect);
    this.#hub.on('broadcast', this.#onBroadcast);
    this.#started = true;
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#hub.off(`node:${this.nodeId}`, this.#onDirect);
    this.#hub.off('broadcast', this.#onBroadcast);
  }

  async sendToNode(nodeId: string, message: BusMessage): Promise<void> {
    const text = encodeBusMessage(message);
    // Delivered on a later tick, as a network hop would be, so callers never rely on synchronous delivery.
    queueMicrotask(() => this.#hub.emit(`node:${nodeId}`, text));
  }

  async broadcast(message: BusMessage): Promise<void> {
    const text = encodeBusMessage(message);
    queueMicrotask(() => this.#hub.emit('broadcast', text));
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.#receiver.add(handler);
  }

  /** One process: the round trip works exactly while the bus is started. */
  async selfCheck(): Promise<boolean> {
    return this.#started;
  }
}
