/** The part of a logger the adapters use; the composition root hands in a pino child logger. */
export interface LogLike {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}
