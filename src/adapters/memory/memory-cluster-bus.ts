import { EventEmitter } from 'node:events';
import type { BusMessage, ClusterBus } from '../../ports/cluster-bus.js';

/** In-process bus; nodes sharing one `hub` form a cluster inside one process. */
export class MemoryClusterBus implements ClusterBus {
  readonly nodeId: string;
  readonly #hub: EventEmitter;
  readonly #handlers: ((m: BusMessage) => void)[] = [];
  readonly #onDirect = (m: BusMessage) => this.#dispatch(m);
  readonly #onBroadcast = (m: BusMessage) => this.#dispatch(m);

  constructor(nodeId: string, hub: EventEmitter = new EventEmitter()) {
    this.nodeId = nodeId;
    this.#hub = hub;
    this.#hub.setMaxListeners(0);
  }

  async start(): Promise<void> {
    this.#hub.on(`node:${this.nodeId}`, this.#onDirect);
    this.#hub.on('broadcast', this.#onBroadcast);
  }

  async stop(): Promise<void> {
    this.#hub.off(`node:${this.nodeId}`, this.#onDirect);
    this.#hub.off('broadcast', this.#onBroadcast);
  }

  async sendToNode(nodeId: string, message: BusMessage): Promise<void> {
    // Delivered on a later tick, as a network hop would be, so callers never rely on synchronous delivery.
    queueMicrotask(() => this.#hub.emit(`node:${nodeId}`, message));
  }

  async broadcast(message: BusMessage): Promise<void> {
    queueMicrotask(() => this.#hub.emit('broadcast', message));
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.#handlers.push(handler);
  }

  #dispatch(m: BusMessage): void {
    for (const h of this.#handlers) h(m);
  }
}
