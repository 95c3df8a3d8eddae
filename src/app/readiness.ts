import type { Logger } from '../log.js';

export interface ReadinessState {
  readonly ready: boolean;
  readonly reason: string | undefined;
}

const CHECK_EVERY_MS = 2000;
const CHECK_TIMEOUT_MS = 2000;

/**
 * Whether this node can be delivered to, for /health/ready: a round trip through the cluster
 * backend to this node itself (`check`, every 2 s), and at once false while the registry says this
 * node's entries may be missing (`registered`), since other nodes would not deliver to it then.
 */
export class Readiness {
  readonly #check: (timeoutMs: number) => Promise<boolean>;
  readonly #registered: () => boolean;
  readonly #log: Logger;
  #last: ReadinessState = { ready: false, reason: 'starting' };
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(deps: { check: (timeoutMs: number) => Promise<boolean>; registered: () => boolean; log: Logger }) {
    this.#check = deps.check;
    this.#registered = deps.registered;
    this.#log = deps.log;
  }

  /** Checks once, then every 2 s. */
  async start(): Promise<void> {
    await this.#run();
    if (!this.#stopped) this.#timer = setInterval(() => void this.#run(), CHECK_EVERY_MS).unref();
  }

  /** Not ready from now on, with `reason`. */
  stop(reason: string): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#last = { ready: false, reason };
  }

  state(): ReadinessState {
    if (this.#last.ready && !this.#registered()) return { ready: false, reason: 're-registering this node\'s connections' };
    return this.#last;
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    const ok = await this.#check(CHECK_TIMEOUT_MS).catch(() => false);
    if (this.#stopped) return;
    const was = this.#last.ready;
    this.#last = ok ? { ready: true, reason: undefined } : { ready: false, reason: 'no round trip through the cluster backend' };
    if (was !== ok) this.#log[ok ? 'info' : 'warn'](`readiness: ${ok ? 'ready' : 'not ready'}`);
  }
}
