import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

/**
 * A request's logger, made a real pino child (with its request id and the redaction set up) only
 * when something logs through it. tidings does not log every request, so most requests never
 * do; building the child anyway cost a few per cent of a publishing node's CPU.
 */
export class LazyRequestLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #opts: ChildLoggerOptions;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#opts = opts;
  }

  #real(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#opts));
  }

  get level(): string {
    return this.#child?.level ?? this.#opts.level ?? this.#parent.level;
  }

  set level(l: string) {
    this.#real().level = l;
  }

  // Methods on the prototype: one small object per request, no closures.
  fatal(...a: unknown[]): void {
    const c = this.#real();
    Reflect.apply(c.fatal, c, a);
  }

  error(...a: unknown[]): void {
    const c = this.#real();
    Reflect.apply(c.error, c, a);
  }

  warn(...a: unknown[]): void {
    const c = this.#real();
    Reflect.apply(c.warn, c, a);
  }

  info(...a: unknown[]): void {
    const c = this.#real();
    Reflect.apply(c.info, c, a);
  }

  debug(...a: unknown[]): void {
    const c = this.#real();
    Reflect.apply(c.debug, c, a);
  }

  trace(...a: unknown[]): void {
    const c = this.#real();
    Reflect.apply(c.trace, c, a);
  }

  silent(...a: unknown[]): void {
    const c = this.#real();
    Reflect.apply(c.silent, c, a);
  }

  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, opts);
  }
}

/** fastify's `childLoggerFactory`: every request gets a lazy child. */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyRequestLogger(logger, bindings, opts);
}
