/**
 * Event ids: `<epoch ms>-<sequence>-<node>`; unique across the cluster, and ordered by time then
 * sequence for events of one node. The sequence restarts each millisecond.
 */
export class EventIds {
  readonly #node: string;
  #ms = 0;
  #seq = 0;

  constructor(nodeId: string) {
    this.#node = nodeId;
  }

  next(now = Date.now()): string {
    if (now > this.#ms) {
      this.#ms = now;
      this.#seq = 0;
    } else {
      this.#seq++;
    }
    return `${this.#ms}-${this.#seq}-${this.#node}`;
  }
}
