import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import type { Admission } from './handshake-gate.js';

/**
 * The registry entry an admission took, released exactly once. Only an open connection may
 * hold a slot, so whatever ends the connection, or the attempt to open it, releases it:
 * every path calls `release()`, and the first call wins.
 */
export class ConnectionSlot {
  readonly admission: Admission;
  readonly #registry: ConnectionRegistry;
  readonly #log: Logger;
  #released = false;

  constructor(admission: Admission, registry: ConnectionRegistry, log: Logger) {
    this.admission = admission;
    this.#registry = registry;
    this.#log = log;
  }

  /**
   * Ties the slot to a raw upgrade socket: a refused, aborted or finished WebSocket always ends
   * with that socket closed, whichever library was holding it.
   */
  releaseWhenClosed(socket: Duplex): void {
    if (socket.destroyed) this.release();
    else socket.once('close', () => this.release());
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    const a = this.admission;
    this.#registry.remove(a.user.key, a.connectionId).catch((e: unknown) => this.#log.warn({ err: String(e), user: a.user.key }, 'could not remove a connection from the registry'));
  }
}
