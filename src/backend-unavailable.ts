/**
 * The shared backend (Redis) did not answer at all, as opposed to a bug. Raised by the adapters,
 * which alone know their client library; a port method may reject with it. Requests that meet it
 * get 503 TIDINGS_BACKEND_UNAVAILABLE with Retry-After instead of 500, and the publisher falls
 * back to this node's memory.
 */
export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isBackendUnavailable(e: unknown): e is BackendUnavailableError {
  return e instanceof BackendUnavailableError;
}
