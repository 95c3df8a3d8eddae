import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { DIAG_MAX_IDLE_SECONDS, DIAG_MAX_RUNNING, diagEcho } from '../diag/echo.js';
import { TidingsError } from '../errors.js';
import { refuseUpgrade } from '../http/refuse.js';

interface DiagWsDeps {
  nodeId: string;
  enabled(): boolean;
  clientIp(req: IncomingMessage): string;
  trustsPeer(req: IncomingMessage): boolean;
}

/** The path under the plain WebSocket prefix, so that the proxy's rules for /websockets/ apply to it. */
export const DIAG_WS_PATH = '/websockets/tidings-diag';

/**
 * The WebSocket half of `tidings diag`: completes the upgrade with no session, sends what arrived
 * (as /api/diag/echo does), echoes one message back, and closes. Proves that the Upgrade and
 * Connection headers pass the proxy and that frames flow both ways; a client that waits before its
 * message learns whether the proxy cuts an idle WebSocket. It never pings, so the socket is idle.
 */
export class DiagWsEndpoint {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  readonly #deps: DiagWsDeps;
  #open = 0;

  constructor(deps: DiagWsDeps) {
    this.#deps = deps;
  }

  static matches(url: string): boolean {
    return url === DIAG_WS_PATH || url.startsWith(`${DIAG_WS_PATH}?`);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.#deps.enabled()) return refuseUpgrade(socket, new TidingsError('TIDINGS_DIAG_DISABLED'));
    if (this.#open >= DIAG_MAX_RUNNING) return refuseUpgrade(socket, new TidingsError('TIDINGS_DIAG_BUSY'));
    const echo = diagEcho(req, this.#deps.nodeId, this.#deps.clientIp(req), this.#deps.trustsPeer(req));
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#open++;
      // Bounded like the HTTP routes: one exchange, after at most the longest idle wait a client may ask for.
      const t = setTimeout(() => ws.terminate(), (DIAG_MAX_IDLE_SECONDS + 30) * 1000);
      ws.once('close', () => {
        this.#open--;
        clearTimeout(t);
      });
      ws.send(JSON.stringify({ type: 'echo', ...echo }));
      ws.once('message', (data) => {
        ws.send(JSON.stringify({ type: 'reply', text: String(data).slice(0, 256) }));
        ws.close(1000, 'diag done');
      });
    });
  }

  close(): void {
    for (const c of this.#wss.clients) c.terminate();
    this.#wss.close();
  }
}
