/** Every stateful component has an explicit start and stop; the composition root orders them. */
export interface Lifecycle {
  start(): Promise<void>;
  /** Idempotent: a second call returns the first call's promise. */
  stop(): Promise<void>;
}
