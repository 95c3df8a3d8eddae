import type { FastifyInstance } from 'fastify';
import { TidingsError } from '../errors.js';

/** Routes that still answer while a node drains: the balancer and Prometheus should see it go. */
const ALWAYS = /^\/(health\/|metrics(\?|$))/;

/**
 * Shutdown's first step for fastify routes: once `start()` ran, a new request is answered 503
 * `TIDINGS_SHUTTING_DOWN` with `Connection: close`, while the ones already in flight run to their
 * answer; `idle()` resolves when none is left. Socket.IO polling bypasses fastify: its sockets are
 * drained by closing them, not here.
 */
export class HttpDrain {
  #inFlight = 0;
  #draining = false;
  #waiters: (() => void)[] = [];
  readonly #onStart: (() => void)[] = [];

  constructor(app: FastifyInstance) {
    app.addHook('onRequest', async (req, reply) => {
      if (this.#draining && !ALWAYS.test(req.url)) {
        const err = new TidingsError('TIDINGS_SHUTTING_DOWN');
        return reply.code(err.status).header('Connection', 'close').type('application/json; charset=utf-8').send(err.toBody());
      }
      this.#inFlight++;
      // 'close' fires for a finished answer and for a client that went away alike.
      reply.raw.once('close', () => {
        if (--this.#inFlight === 0) for (const w of this.#waiters.splice(0)) w();
      });
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** `fn` runs when draining starts: a handler that holds requests open (long-poll, SSE) ends them then. */
  onStart(fn: () => void): void {
    this.#onStart.push(fn);
  }

  start(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const fn of this.#onStart.splice(0)) fn();
  }

  /** Resolves true once no request is in flight, or false at `deadline` (ms since the epoch). */
  idle(deadline: number): Promise<boolean> {
    if (this.#inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
