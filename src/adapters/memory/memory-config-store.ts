import type { ConfigStore, StoredValue } from '../../ports/config-store.js';

/** Run-time values in a map: this node's own, or one shared by the nodes of an in-process cluster. */
export class MemoryConfigStore implements ConfigStore {
  readonly #values: Map<string, StoredValue>;

  constructor(values = new Map<string, StoredValue>()) {
    this.#values = values;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async all(): Promise<StoredValue[]> {
    return [...this.#values.values()];
  }

  async set(v: StoredValue): Promise<void> {
    this.#values.set(slot(v.contextId, v.userId, v.key), v);
  }

  async unset(contextId: number, userId: number | null, key: string): Promise<boolean> {
    return this.#values.delete(slot(contextId, userId, key));
  }
}

function slot(contextId: number, userId: number | null, key: string): string {
  return `${contextId}/${userId ?? ''}/${key}`;
}
